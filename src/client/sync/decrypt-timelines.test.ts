// A processor with `decryptTimelines` gets every room's encrypted events of a response (filled
// gaps included) in one call, in the order the rooms are applied; the events reach listeners in
// each room's order, decrypted as it answered; a throwing hook marks them all.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import type { DecryptionResult, SyncProcessor } from "./hooks.ts";

const enc = (id: string) => ({
  event_id: id,
  type: "m.room.encrypted",
  sender: "@bob:hs",
  origin_server_ts: 1,
  content: { algorithm: "m.megolm.v1.aes-sha2" },
});
const plain = (id: string) => ({
  event_id: id,
  type: "m.room.message",
  sender: "@bob:hs",
  origin_server_ts: 1,
  content: { msgtype: "m.text", body: "clear" },
});
const clear = (id: string): DecryptionResult => ({
  ok: true,
  type: "m.room.message",
  content: { msgtype: "m.text", body: `clear ${id}` },
  info: { decrypted: true, trust: "unverified" },
});

async function client(processor: SyncProcessor): Promise<{ client: MatrixClient; seen: string[] }> {
  const store = new MemoryClientStore();
  await store.saveSession({
    homeserverUrl: "https://hs",
    userId: "@me:hs",
    deviceId: "DEV",
    accessToken: "t",
  });
  const fetch = async (): Promise<Response> => {
    throw new Error("no requests in this test");
  };
  const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch });
  await c.restore();
  c.setSyncProcessor(processor);
  const seen: string[] = [];
  c.on("room.event", (room, ev) => {
    const what =
      ev.encryption === undefined
        ? "plain"
        : ev.encryption.decrypted
          ? String(ev.content.body)
          : ev.encryption.code;
    seen.push(`${room.roomId} ${ev.eventId}:${what}`);
  });
  return { client: c, seen };
}

const response = {
  next_batch: "s1",
  rooms: {
    join: {
      "!a:hs": { timeline: { events: [enc("$a1"), plain("$a2"), enc("$a3")] } },
      "!b:hs": { timeline: { events: [plain("$b1")] } },
      "!c:hs": { timeline: { events: [enc("$c1")] } },
    },
    leave: { "!l:hs": { timeline: { events: [enc("$l1")] } } },
  },
};

describe("decryptTimelines", () => {
  it("takes every room's encrypted events of a response in one call, results per room in order", async () => {
    const calls: { roomId: string; ids: string[] }[][] = [];
    const { client: c, seen } = await client({
      async processSyncChanges() {
        return [];
      },
      async decryptRoomEvents() {
        throw new Error("decryptTimelines is used instead");
      },
      async decryptTimelines(timelines) {
        calls.push(timelines.map((t) => ({ roomId: t.roomId, ids: t.events.map((e) => e.event_id) })));
        return timelines.map((t) =>
          t.events.map((e) =>
            e.event_id === "$a3"
              ? { ok: false, code: "UNKNOWN_SESSION", reason: "not yet" }
              : clear(e.event_id),
          ),
        );
      },
    });
    await c.feedSync(response);
    assert.deepEqual(calls, [
      [
        { roomId: "!l:hs", ids: ["$l1"] },
        { roomId: "!a:hs", ids: ["$a1", "$a3"] },
        { roomId: "!c:hs", ids: ["$c1"] },
      ],
    ]);
    assert.deepEqual(seen, [
      "!l:hs $l1:clear $l1",
      "!a:hs $a1:clear $a1",
      "!a:hs $a2:plain",
      "!a:hs $a3:UNKNOWN_SESSION",
      "!b:hs $b1:plain",
      "!c:hs $c1:clear $c1",
    ]);
  });

  it("marks every encrypted event of the response when the hook throws", async () => {
    const { client: c, seen } = await client({
      async processSyncChanges() {
        return [];
      },
      async decryptTimelines() {
        throw new Error("engine bug");
      },
    });
    await c.feedSync(response);
    assert.deepEqual(seen, [
      "!l:hs $l1:DECRYPTOR_FAILED",
      "!a:hs $a1:DECRYPTOR_FAILED",
      "!a:hs $a2:plain",
      "!a:hs $a3:DECRYPTOR_FAILED",
      "!b:hs $b1:plain",
      "!c:hs $c1:DECRYPTOR_FAILED",
    ]);
  });
});
