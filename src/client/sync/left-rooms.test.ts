// Rooms the user left stayed in memory and in the client store for ever (a declined spam
// invitation included). `forgetRoom` now drops the room here and from the store, and past
// MAX_LEFT_ROOMS rooms left those left longest ago are forgotten the same way.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { MatrixClient } from "../client.ts";
import { MemoryClientStore, type SyncChanges } from "../client-store/index.ts";
import { Room } from "../rooms/room.ts";
import { SCRIPTED_SESSION, scriptedSyncClient } from "../test-support/scripted-sync.ts";
import { MAX_LEFT_ROOMS, SyncedState } from "./state.ts";

const me = SCRIPTED_SESSION.userId;
const member = (roomId: string, membership: string, i = 0) => ({
  event_id: `$${membership}-${i}-${roomId}`,
  type: "m.room.member",
  state_key: me,
  sender: me,
  origin_server_ts: 1,
  content: { membership },
});
const withMember = (roomId: string, membership: string) => ({
  timeline: { events: [member(roomId, membership)] },
});
const left = (roomIds: string[]) => Object.fromEntries(roomIds.map((id) => [id, withMember(id, "leave")]));
const body = (nextBatch: string, rooms: Record<string, unknown>) =>
  JSON.stringify({ next_batch: nextBatch, rooms });

async function sqlitePath(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-left-rooms-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, "client.sqlite3");
}

const roomIds = (c: MatrixClient) => c.getRooms().map((r) => r.roomId);

describe("rooms the user left", () => {
  it("forgetRoom drops the room here and from the store, after the server forgot it", async (t) => {
    const path = await sqlitePath(t);
    const first = await scriptedSyncClient(path, [
      body("s1", { join: { "!keep:hs": withMember("!keep:hs", "join") }, leave: left(["!gone:hs"]) }),
      "{}", // POST /forget
    ]);
    const forgotten: string[] = [];
    first.on("room.forgotten", (roomId) => {
      forgotten.push(roomId);
    });
    await first.syncOnce();
    assert.deepEqual(roomIds(first).sort(), ["!gone:hs", "!keep:hs"]);
    await first.forgetRoom("!gone:hs");
    assert.deepEqual(roomIds(first), ["!keep:hs"]);
    assert.deepEqual(forgotten, ["!gone:hs"]);
    await first.close();
    const again = await scriptedSyncClient(path, []);
    assert.deepEqual(roomIds(again), ["!keep:hs"]);
    assert.equal(again.nextBatch, "s1");
    await again.close();
  });

  it("forgetRoom from a sync.settle listener: the waiting save removes the room", async (t) => {
    // The response's save waits for its `sync.settle` work, which here waits for `forgetRoom`:
    // the removal must go with that save, not after it.
    const path = await sqlitePath(t);
    const first = await scriptedSyncClient(path, [body("s1", { leave: left(["!gone:hs"]) }), "{}"]);
    first.on("sync.settle", async () => {
      if (first.getRoom("!gone:hs")) await first.forgetRoom("!gone:hs");
    });
    await first.syncOnce();
    await first.close();
    const again = await scriptedSyncClient(path, []);
    assert.deepEqual(roomIds(again), []);
    assert.equal(again.nextBatch, "s1");
    await again.close();
  });

  it(`are at most MAX_LEFT_ROOMS (${MAX_LEFT_ROOMS}), those left longest ago forgotten, also after a restart`, async (t) => {
    const path = await sqlitePath(t);
    const spam = Array.from({ length: MAX_LEFT_ROOMS + 5 }, (_, i) => `!spam${i}:evil`);
    const first = await scriptedSyncClient(path, [
      body("s1", {
        join: { "!home:hs": withMember("!home:hs", "join") },
        invite: { "!later:hs": { invite_state: { events: [] } } },
        leave: left(spam),
      }),
      // Two more left (one of them a declined invitation); the oldest left one joined again.
      body("s2", {
        leave: left(["!new:evil", "!later:hs"]),
        join: { [spam[5]!]: withMember(spam[5]!, "join") },
      }),
    ]);
    const forgotten: string[] = [];
    first.on("room.forgotten", (roomId) => {
      forgotten.push(roomId);
    });
    await first.syncOnce();
    assert.deepEqual(forgotten, spam.slice(0, 5));
    assert.equal(first.getRooms("leave").length, MAX_LEFT_ROOMS);
    assert.equal(first.getRoom("!home:hs")?.membership, "join");
    assert.equal(first.getRoom("!later:hs")?.membership, "invite");

    await first.syncOnce();
    // spam[5] is joined again, so only one more (spam[6]) is past the bound.
    assert.deepEqual(forgotten, spam.slice(0, 5).concat(spam[6]!));
    const expected = roomIds(first).sort();
    assert.equal(first.getRooms("leave").length, MAX_LEFT_ROOMS);
    assert.equal(first.getRoom("!later:hs")?.membership, "leave");
    assert.equal(first.getRoom(spam[5]!)?.membership, "join");
    await first.close();

    const again = await scriptedSyncClient(path, [body("s3", { leave: left(["!third:evil"]) })]);
    assert.deepEqual(roomIds(again).sort(), expected);
    // After a restart the bound holds: one more left, one forgotten, the joined rooms kept.
    await again.syncOnce();
    assert.equal(again.getRooms("leave").length, MAX_LEFT_ROOMS);
    assert.equal(again.getRoom("!home:hs")?.membership, "join");
    assert.equal(again.getRoom(spam[5]!)?.membership, "join");
    await again.close();
  });
});

describe("a room forgotten while the response that changed it is handled", () => {
  it("stays forgotten: its removal is saved, and it is not counted as left", () => {
    const synced = new SyncedState();
    const stale = new Room("!x:hs", "leave");
    synced.rooms.set(stale.roomId, stale);
    synced.noteMemberships([stale]);
    // The handler took `stale` for a response; `forgetRoom` ran while it awaited (decryption, a gap).
    assert.equal(synced.forget(stale.roomId), true);
    const others = Array.from({ length: MAX_LEFT_ROOMS }, (_, i) => new Room(`!l${i}:hs`, "leave"));
    for (const r of others) synced.rooms.set(r.roomId, r);
    assert.deepEqual(synced.noteMemberships([stale, ...others]), [], "no room past the bound");
    assert.equal(synced.room(stale.roomId), undefined);
    assert.deepEqual(synced.toSave({ nextBatch: "s2", rooms: [stale.toSnapshot()], accountData: [] }), {
      nextBatch: "s2",
      rooms: [],
      accountData: [],
      forgotten: [stale.roomId],
    });
  });
});

describe("forgetRoom while the sync position is being written", () => {
  it("the room's removal is written after that save, not left for a next one that may never come", async () => {
    let writing: () => void = () => {};
    const started = new Promise<void>((r) => {
      writing = r;
    });
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    class SlowStore extends MemoryClientStore {
      override async saveSync(changes: SyncChanges): Promise<void> {
        writing();
        await gate;
        await super.saveSync(changes);
      }
    }
    const store = new SlowStore();
    const client = await scriptedSyncClient(store, [body("s1", { leave: left(["!gone:hs"]) }), "{}"]);
    const synced = client.syncOnce();
    await started;
    await client.forgetRoom("!gone:hs");
    release();
    await synced;
    await client.close();
    assert.deepEqual(
      (await store.loadSync())?.rooms.map((r) => r.roomId),
      [],
    );
  });
});

describe("forgetRoom when the store refuses the removal", () => {
  it("throws, and calling it again writes the removal", async () => {
    let refuse = false;
    class FlakyStore extends MemoryClientStore {
      override async saveSync(changes: SyncChanges): Promise<void> {
        if (refuse) throw new Error("disk full");
        await super.saveSync(changes);
      }
    }
    const store = new FlakyStore();
    const client = await scriptedSyncClient(store, [body("s1", { leave: left(["!gone:hs"]) }), "{}", "{}"]);
    await client.syncOnce();
    refuse = true;
    await assert.rejects(client.forgetRoom("!gone:hs"), /disk full/);
    refuse = false;
    await client.forgetRoom("!gone:hs"); // the server forgets again (idempotent); the store now too
    await client.close();
    assert.deepEqual(
      (await store.loadSync())?.rooms.map((r) => r.roomId),
      [],
    );
  });
});

describe("the left rooms after a restart", () => {
  it("are given up in the order they were left (own member events), not the store's order", () => {
    // IndexedDB reads rooms back by ID: "!a" (left last) comes before "!z" (left first).
    const leftAt = (roomId: string, ts: number) => ({
      roomId,
      membership: "leave" as const,
      state: [{ ...member(roomId, "leave"), origin_server_ts: ts }],
      accountData: [],
    });
    const rooms = [
      leftAt("!a:hs", 3_000),
      ...Array.from({ length: MAX_LEFT_ROOMS - 2 }, (_, i) => leftAt(`!m${i}:hs`, 2_000 + i)),
      leftAt("!z:hs", 1_000),
    ];
    const synced = new SyncedState();
    synced.reset({ nextBatch: "s1", rooms, accountData: [] }, me);
    const next = new Room("!new:hs", "leave");
    synced.rooms.set(next.roomId, next);
    assert.deepEqual(synced.noteMemberships([next]), ["!z:hs"]);
    synced.rooms.set("!new2:hs", new Room("!new2:hs", "leave"));
    assert.deepEqual(synced.noteMemberships([synced.room("!new2:hs") as Room]), ["!m0:hs"]);
  });
});
