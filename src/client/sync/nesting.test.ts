// A member's state event nested thousands of levels deep (JSON.parse takes it; JSON.stringify
// overflows the stack) used to stop a client with a SQLite store from syncing for good: saving the
// room's state threw a RangeError on every retry. It is dropped at the edge like any malformed event.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { SqliteClientStore } from "../client-store/sqlite-store.ts";

const LEVELS = 6_000;

function response(nextBatch: string, stateEvents: string[]): string {
  const timeline = stateEvents.join(",");
  return `{"next_batch":"${nextBatch}","rooms":{"join":{"!r:hs":{"timeline":{"events":[${timeline}]}}}}}`;
}

function member(eventId: string, userId: string, extra: string): string {
  return (
    `{"event_id":"${eventId}","type":"m.room.member","state_key":"${userId}","sender":"${userId}",` +
    `"origin_server_ts":1,"content":{"membership":"join","displayname":"${userId}"${extra}}}`
  );
}

describe("sync with a deeply nested event", () => {
  it("drops the event, saves the rest and keeps syncing (SQLite client store)", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "keyroom-nesting-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const store = await SqliteClientStore.open(join(dir, "client.db"));
    t.after(() => store.close());
    await store.saveSession({
      homeserverUrl: "https://hs",
      userId: "@me:hs",
      deviceId: "D",
      accessToken: "t",
    });
    const deep = `,"x":${'{"a":'.repeat(LEVELS)}1${"}".repeat(LEVELS)}`;
    const bodies = [
      response("s1", [member("$me", "@me:hs", ""), member("$deep", "@mallory:hs", deep)]),
      response("s2", [member("$bob", "@bob:hs", "")]),
    ];
    const client = new MatrixClient({
      homeserverUrl: "https://hs",
      store,
      fillTimelineGaps: false,
      fetch: async () => new Response(bodies.shift() ?? '{"next_batch":"s3"}', { status: 200 }),
    });
    await client.restore();
    await client.syncOnce();
    assert.equal((await store.loadSync())?.nextBatch, "s1");
    await client.syncOnce();
    assert.equal((await store.loadSync())?.nextBatch, "s2");
    const room = client.getRoom("!r:hs");
    assert.ok(room);
    assert.deepEqual(
      ["@bob:hs", "@mallory:hs", "@me:hs"].map((u) => room.getMember(u)?.membership),
      ["join", undefined, "join"],
    );
  });
});
