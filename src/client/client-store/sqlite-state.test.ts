// SqliteClientStore keeps a room's state in a row of its own, with a revision, and writes it only
// when it changed: a save whose snapshot has the state array it last wrote (the client's, frozen)
// writes the room's other fields and the token alone, unless another writer of the file replaced
// the state since (its revision no longer this store's), when the state is written whole. Stores
// of schema 1 (whole snapshots per row) are migrated; a failed save changes nothing, not even what
// the store believes it holds.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { StateEvent, SyncResponse } from "../../wire/index.ts";
import { offlineSyncLoop } from "../test-support/offline-sync-loop.ts";
import { namedRoom } from "../test-support/room-state.ts";
import { SqliteClientStore } from "./sqlite-store.ts";
import type { RoomSnapshot } from "./store.ts";

const dir = await mkdtemp(join(tmpdir(), "keyroom-client-sqlite-state-"));
after(() => rm(dir, { recursive: true, force: true }));
let n = 0;
const newPath = () => join(dir, `client-${n++}.sqlite3`);

const member = (user: string, membership = "join"): StateEvent => ({
  event_id: `$m-${user}-${membership}`,
  type: "m.room.member",
  state_key: user,
  sender: user,
  origin_server_ts: 1,
  content: { membership },
});

/** A joined room `roomId` with `state` (frozen, as the client's snapshots have it) and `prevBatch`. */
const room = (roomId: string, state: readonly StateEvent[], prevBatch: string): RoomSnapshot => ({
  roomId,
  membership: "join",
  state: state as StateEvent[],
  accountData: [],
  prevBatch,
});

/** The `room_state` row of `roomId` as another connection reads it. */
function stateRow(path: string, roomId: string): { rev: string; json: string } | undefined {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare("SELECT rev, json FROM room_state WHERE room_id = ?").get(roomId) as
      | { rev: string; json: string }
      | undefined;
  } finally {
    db.close();
  }
}

describe("SqliteClientStore room state", () => {
  it("a save with the state array it last wrote writes the room's fields and token, not its state", async () => {
    const path = newPath();
    const s = await SqliteClientStore.open(path);
    const state = Object.freeze([member("@a:hs"), member("@b:hs")]);
    await s.saveSync({ nextBatch: "s1", rooms: [room("!r:hs", state, "p1")], accountData: [] });
    const first = stateRow(path, "!r:hs");
    assert.ok(first);
    await s.saveSync({ nextBatch: "s2", rooms: [room("!r:hs", state, "p2")], accountData: [] });
    assert.deepEqual(stateRow(path, "!r:hs"), first, "the state row left as it was");
    const back = await s.loadSync();
    assert.equal(back?.nextBatch, "s2");
    assert.deepEqual(back?.rooms, [room("!r:hs", state, "p2")]);
    // New state (a new array): written.
    const changed = Object.freeze([member("@a:hs"), member("@b:hs", "leave")]);
    await s.saveSync({ nextBatch: "s3", rooms: [room("!r:hs", changed, "p3")], accountData: [] });
    assert.notEqual(stateRow(path, "!r:hs")?.rev, first.rev);
    assert.deepEqual((await s.loadSync())?.rooms, [room("!r:hs", changed, "p3")]);
    // An array that is not frozen may have changed in place: written every time.
    const open = [member("@c:hs")];
    await s.saveSync({ nextBatch: "s4", rooms: [room("!r:hs", open, "p4")], accountData: [] });
    open.push(member("@d:hs"));
    await s.saveSync({ nextBatch: "s5", rooms: [room("!r:hs", open, "p5")], accountData: [] });
    assert.equal((await s.loadSync())?.rooms[0]?.state.length, 2);
    await s.close();
  });

  it("after a restart, the client's rooms made of what was read skip their unchanged state too", async () => {
    const path = newPath();
    const a = await SqliteClientStore.open(path);
    await a.saveSync({
      nextBatch: "s1",
      rooms: [room("!r:hs", Object.freeze([member("@a:hs"), member("@b:hs")]), "p1")],
      accountData: [],
    });
    await a.close();
    const b = await SqliteClientStore.open(path);
    const read = (await b.loadSync())?.rooms[0];
    assert.ok(read);
    const before = stateRow(path, "!r:hs");
    // The client's snapshot: a new frozen array of the events it read.
    await b.saveSync({
      nextBatch: "s2",
      rooms: [room("!r:hs", Object.freeze([...read.state]), "p2")],
      accountData: [],
    });
    assert.deepEqual(stateRow(path, "!r:hs"), before);
    await b.close();
  });

  it("another writer's state in between (another process): the next save writes its own state whole", async () => {
    const path = newPath();
    const a = await SqliteClientStore.open(path);
    const b = await SqliteClientStore.open(path);
    const ours = Object.freeze([member("@a:hs")]);
    const theirs = Object.freeze([member("@a:hs"), member("@b:hs")]);
    await a.saveSync({ nextBatch: "a1", rooms: [room("!r:hs", ours, "pa1")], accountData: [] });
    await b.saveSync({ nextBatch: "b1", rooms: [room("!r:hs", theirs, "pb1")], accountData: [] });
    // `a`'s room still has the state it wrote; the file has `b`'s: `a`'s fields must not go with it.
    await a.saveSync({ nextBatch: "a2", rooms: [room("!r:hs", ours, "pa2")], accountData: [] });
    const back = await (await SqliteClientStore.open(path)).loadSync();
    assert.equal(back?.nextBatch, "a2");
    assert.deepEqual(back?.rooms, [room("!r:hs", ours, "pa2")], "a's header with a's state");
    // And `b`, whose state was replaced in turn, writes its own whole again.
    await b.saveSync({ nextBatch: "b2", rooms: [room("!r:hs", theirs, "pb2")], accountData: [] });
    assert.deepEqual((await a.loadSync())?.rooms, [room("!r:hs", theirs, "pb2")]);
    // A room forgotten (by either) and saved again: its state is written, not taken as still there.
    await a.saveSync({ nextBatch: "a3", rooms: [], accountData: [], forgotten: ["!r:hs"] });
    await b.saveSync({ nextBatch: "b3", rooms: [room("!r:hs", theirs, "pb3")], accountData: [] });
    assert.deepEqual((await a.loadSync())?.rooms, [room("!r:hs", theirs, "pb3")]);
    await a.close();
    await b.close();
  });

  it("a save that fails writes nothing, and the next one writes the state the failed one did not", async () => {
    const path = newPath();
    const s = await SqliteClientStore.open(path);
    const one = Object.freeze([member("@a:hs")]);
    const two = Object.freeze([member("@a:hs"), member("@b:hs")]);
    await s.saveSync({ nextBatch: "s1", rooms: [room("!r:hs", one, "p1")], accountData: [] });
    // The transaction fails at its last write (the token), after the room's state and fields.
    const db = (s as unknown as { db: Database.Database }).db;
    db.exec(
      "CREATE TEMP TRIGGER fail_token BEFORE INSERT ON sync_token BEGIN SELECT RAISE(ABORT, 'crash'); END",
    );
    await assert.rejects(s.saveSync({ nextBatch: "s2", rooms: [room("!r:hs", two, "p2")], accountData: [] }));
    const after = await (await SqliteClientStore.open(path)).loadSync();
    assert.equal(after?.nextBatch, "s1");
    assert.deepEqual(after?.rooms, [room("!r:hs", one, "p1")], "the old token with the old room, whole");
    db.exec("DROP TRIGGER fail_token");
    await s.saveSync({ nextBatch: "s3", rooms: [room("!r:hs", two, "p3")], accountData: [] });
    assert.deepEqual((await s.loadSync())?.rooms, [room("!r:hs", two, "p3")]);
    await s.close();
  });

  it("a schema 1 file (whole snapshots per row) is migrated: every room reads back as it was", async () => {
    const path = newPath();
    const old = new Database(path);
    old.exec(`CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
      CREATE TABLE sync_token (id INTEGER PRIMARY KEY CHECK (id = 1), next_batch TEXT NOT NULL);
      CREATE TABLE rooms (room_id TEXT PRIMARY KEY, json TEXT NOT NULL);
      CREATE TABLE account_data (type TEXT PRIMARY KEY, json TEXT NOT NULL);`);
    const rooms: RoomSnapshot[] = [
      { ...namedRoom("!b:hs", "B"), prevBatch: "pb", summary: { joinedMemberCount: 2 } },
      {
        ...namedRoom("!a:hs", "A \u{1F600} \ud800"),
        state: [...namedRoom("!a:hs", "A").state, member("@x:hs")],
      },
      { roomId: "!i:hs", membership: "invite", state: [], accountData: [], inviteState: [] },
    ];
    for (const r of rooms)
      old.prepare("INSERT INTO rooms (room_id, json) VALUES (?, ?)").run(r.roomId, JSON.stringify(r));
    old.prepare("INSERT INTO sync_token (id, next_batch) VALUES (1, 's9')").run();
    old.pragma("user_version = 1");
    old.close();

    const s = await SqliteClientStore.open(path);
    const back = await s.loadSync();
    assert.equal(back?.nextBatch, "s9");
    assert.deepEqual(back?.rooms, rooms);
    // The new layout: the state in `room_state`, the rooms rows without it.
    const raw = new Database(path, { readonly: true });
    assert.equal(raw.pragma("user_version", { simple: true }), 2);
    const rows = raw.prepare("SELECT json FROM rooms").all() as { json: string }[];
    assert.ok(rows.every((r) => !("state" in JSON.parse(r.json))));
    assert.equal((raw.prepare("SELECT count(*) AS n FROM room_state").get() as { n: number }).n, 3);
    raw.close();
    // Saves after it: the state read (what the migration moved) is not written again when unchanged.
    const before = stateRow(path, "!a:hs");
    const read = back?.rooms.find((r) => r.roomId === "!a:hs");
    assert.ok(read);
    await s.saveSync({
      nextBatch: "s10",
      rooms: [{ ...read, state: Object.freeze([...read.state]) as StateEvent[] }],
      accountData: [],
    });
    assert.deepEqual(stateRow(path, "!a:hs"), before);
    await s.close();
    const again = await SqliteClientStore.open(path);
    assert.deepEqual((await again.loadSync())?.rooms, rooms);
    await again.close();
  });

  it("a schema 1 row that is not a snapshot stays as it was: it fails validation as before", async () => {
    const path = newPath();
    const old = new Database(path);
    old.exec(`CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
      CREATE TABLE sync_token (id INTEGER PRIMARY KEY CHECK (id = 1), next_batch TEXT NOT NULL);
      CREATE TABLE rooms (room_id TEXT PRIMARY KEY, json TEXT NOT NULL);
      CREATE TABLE account_data (type TEXT PRIMARY KEY, json TEXT NOT NULL);
      INSERT INTO sync_token (id, next_batch) VALUES (1, 's1');
      INSERT INTO rooms (room_id, json) VALUES ('!bad:hs', '{"roomId":"!bad:hs","state":5}');
      PRAGMA user_version = 1;`);
    old.close();
    const s = await SqliteClientStore.open(path);
    await assert.rejects(s.loadSync(), (e: unknown) => (e as { code?: unknown }).code === "STORE_CORRUPT");
    await s.close();
  });

  it("a client: a response with one message in a room writes none of its state; one with a member does", async () => {
    const path = newPath();
    const store = await SqliteClientStore.open(path);
    const loop = offlineSyncLoop(store, "@me:hs");
    const response = (next: string, state: StateEvent[], messages: number): SyncResponse => ({
      next_batch: next,
      rooms: {
        join: {
          "!r:hs": {
            state: { events: state },
            timeline: {
              events: Array.from({ length: messages }, (_, i) => ({
                event_id: `$msg-${next}-${i}`,
                type: "m.room.message",
                sender: "@a:hs",
                origin_server_ts: 5,
                content: { msgtype: "m.text", body: "hi" },
              })),
            },
          },
        },
      },
    });
    await loop.feed(response("s1", [member("@me:hs"), member("@a:hs")], 0));
    const first = stateRow(path, "!r:hs");
    await loop.feed(response("s2", [], 1));
    assert.deepEqual(stateRow(path, "!r:hs"), first, "a message: the state row untouched");
    await loop.feed(response("s3", [member("@b:hs")], 1));
    assert.notEqual(stateRow(path, "!r:hs")?.rev, first?.rev, "a member joined: written");
    assert.deepEqual(
      (await store.loadSync())?.rooms[0]?.state.map((e) => e.state_key),
      ["@me:hs", "@a:hs", "@b:hs"],
    );
    await store.close();
  });
});
