/** Hostile key requests: nobody but our own verified devices gets a key, and nothing changes. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { afterCase, LONE, LONG, makeWorld, ROOM, snapshot, type World } from "./world.ts";

type Req = (w: World) => { sender: string; content: unknown; encrypted?: boolean };
const body = (w: World, extra: Record<string, unknown> = {}) => ({
  algorithm: "m.megolm.v1.aes-sha2",
  room_id: ROOM,
  session_id: (w.first.content as { session_id: string }).session_id,
  ...extra,
});
const request =
  (sender: string, edit: (c: Record<string, unknown>, w: World) => unknown = (c) => c): Req =>
  (w) => ({
    sender,
    content: edit({ action: "request", request_id: "r1", requesting_device_id: "X", body: body(w) }, w),
  });

const CASES: [string, Req][] = [
  ["from another user", request("@mallory:x")],
  [
    "from another user naming Bob's device ID",
    request("@mallory:x", (c) => ({ ...c, requesting_device_id: "B" })),
  ],
  ["from Bob's own unknown device", request("@bob:x")],
  ["from Bob's own ID naming Bob's device", request("@bob:x", (c) => ({ ...c, requesting_device_id: "B" }))],
  [
    "from an unknown own device, for an unknown session",
    request("@bob:x", (c, w) => ({ ...c, body: body(w, { session_id: "nope" }) })),
  ],
  ["with another algorithm", request("@bob:x", (c, w) => ({ ...c, body: body(w, { algorithm: "x" }) }))],
  ["without a body", request("@bob:x", (c) => ({ ...c, body: undefined }))],
  ["with an unknown action", request("@bob:x", (c) => ({ ...c, action: "gimme" }))],
  ["with a lone surrogate request ID", request("@bob:x", (c) => ({ ...c, request_id: LONE }))],
  [
    "with a lone surrogate room ID",
    request("@bob:x", (c, w) => ({ ...c, body: body(w, { room_id: LONE }) })),
  ],
  ["with a too long device ID", request("@bob:x", (c) => ({ ...c, requesting_device_id: LONG }))],
  ["with the content an array", request("@bob:x", () => [])],
  ["a cancellation of nothing", request("@bob:x", (c) => ({ ...c, action: "request_cancellation" }))],
  ["with a numeric request ID", request("@bob:x", (c) => ({ ...c, request_id: 1 }))],
];

describe("hostile input: key requests", () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
  });
  for (const [name, build] of CASES) {
    it(`${name} → no key leaves`, async () => {
      const state = await snapshot(w);
      const { sender, content } = build(w);
      const sentBefore = w.hs.sentToDevice.length;
      await w.bob.machine.receiveSyncChanges({
        toDevice: [{ type: "m.room_key_request", sender, content }],
      });
      await w.bob.flush();
      const forwards = w.hs.sentToDevice
        .slice(sentBefore)
        .filter((m) => m.from === "@bob:x" && m.eventType === "m.room.encrypted");
      assert.deepEqual(forwards, []);
      // A held request (own unverified device asking for a key Bob has) is for the user to decide.
      for (const held of w.bob.machine.heldKeyRequests()) assert.equal(held.deviceId, "X");
      await afterCase(w, state);
    });
  }
});
