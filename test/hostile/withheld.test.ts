/** Hostile withheld notices: only the session's own sender may say a key was withheld. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { DecryptionError } from "../../src/e2ee/errors.ts";
import { afterCase, LONE, MEMBERS, makeWorld, ROOM, snapshot, type World } from "./world.ts";

type Notice = (w: World, sessionId: string) => { sender: string; content: Record<string, unknown> };
const base = (w: World, sessionId: string) => ({
  algorithm: "m.megolm.v1.aes-sha2",
  room_id: ROOM,
  session_id: sessionId,
  sender_key: w.alice.machine.identityKeys.curve25519,
  code: "m.unverified",
});
const from =
  (sender: string, edit: (c: Record<string, unknown>) => Record<string, unknown> = (c) => c): Notice =>
  (w, id) => ({ sender, content: edit(base(w, id)) });

const CASES: [string, Notice][] = [
  ["from another user", from("@mallory:x")],
  ["from another user, without sender_key", from("@mallory:x", (c) => ({ ...c, sender_key: undefined }))],
  ["from another user naming their own key", from("@mallory:x", (c) => ({ ...c, sender_key: "bWFsbG9yeQ" }))],
  [
    "from the sender, naming a key of none of her devices",
    from("@alice:x", (c) => ({ ...c, sender_key: "bm90IGFsaWNl" })),
  ],
  ["from Bob himself", from("@bob:x")],
  ["with a lone surrogate in room_id", from("@alice:x", (c) => ({ ...c, room_id: `!r${LONE}:x` }))],
  ["with a lone surrogate in the code", from("@alice:x", (c) => ({ ...c, code: LONE }))],
  ["with a lone surrogate in the reason", from("@alice:x", (c) => ({ ...c, reason: `no ${LONE}` }))],
  ["with a reason of 1 MB", from("@alice:x", (c) => ({ ...c, reason: "r".repeat(1024 * 1024) }))],
  ["with another algorithm", from("@alice:x", (c) => ({ ...c, algorithm: "m.megolm.v2" }))],
  ["without a session_id", from("@alice:x", (c) => ({ ...c, session_id: undefined }))],
  ["without a code", from("@alice:x", (c) => ({ ...c, code: undefined }))],
  ["with the code a number", from("@alice:x", (c) => ({ ...c, code: 3 }))],
  ["for another room", from("@alice:x", (c) => ({ ...c, room_id: "!elsewhere:x" }))],
];

describe("hostile input: withheld notices", () => {
  let w: World;
  before(async () => {
    w = await makeWorld();
  });
  for (const [name, notice] of CASES) {
    it(`${name} → the event stays UNKNOWN_SESSION and the key is requested`, async () => {
      await w.alice.machine.discardRoomKey(ROOM);
      const event = await w.alice.sendMessage(ROOM, MEMBERS, name);
      const inbox = w.hs.device("@bob:x", "B").inbox;
      const lost = inbox.splice(0); // the key is held back for now
      const sessionId = (event.content as { session_id: string }).session_id;
      const state = await snapshot(w);
      const { sender, content } = notice(w, sessionId);
      await w.bob.machine.receiveSyncChanges({
        toDevice: [{ type: "m.room_key.withheld", sender, content }],
      });
      await assert.rejects(
        w.bob.machine.decryptRoomEvent(event, ROOM),
        (e) => e instanceof DecryptionError && e.code === "UNKNOWN_SESSION",
      );
      const asked = (await w.bob.machine.outgoingRequests()).some(
        (r) => r.type === "to_device" && r.eventType === "m.room_key_request",
      );
      assert.ok(asked);
      await w.bob.flush();
      inbox.push(...lost); // ... and arrives late: the pending event decrypts
      const late = await w.bob.sync();
      assert.deepEqual(
        late.redecrypted.map((e) => e.content.body),
        [name],
      );
      await afterCase(w, await snapshot(w));
      assert.ok(state.length > 0);
    });
  }
  it("a notice from the sender for a session Bob holds → ignored, it still decrypts", async () => {
    const state = await snapshot(w);
    const id = (w.first.content as { session_id: string }).session_id;
    await w.bob.machine.receiveSyncChanges({
      toDevice: [{ type: "m.room_key.withheld", sender: "@alice:x", content: base(w, id) }],
    });
    await afterCase(w, state);
  });
});
