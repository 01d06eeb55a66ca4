// The IndexedDB client store's layout (fake-indexeddb): a room's state events one record each, so
// that no value grows with a room's state (Chromium refuses one past about 127 MiB; the real-browser
// case is test/browser/idb-client-store.test.ts). Upgrade 2 from the whole snapshots of version 1,
// saves that write only what changed, and what another connection wrote in between.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StateEvent } from "../../wire/index.ts";
import { ClientError } from "../errors.ts";
import { IndexedDbClientStore } from "./idb-store.ts";
import type { RoomSnapshot } from "./store.ts";

let n = 0;
const dbName = (what: string) => `idb-client-store-${what}-${n++}`;

const ev = (type: string, stateKey: string, content: Record<string, unknown>, id = "1"): StateEvent => ({
  type,
  state_key: stateKey,
  sender: "@a:hs",
  event_id: `$${type}-${stateKey}-${id}`,
  origin_server_ts: 1,
  content,
});

/** State in an order no key sorts it in, as a room's state map keeps it (first seen first). */
const roomA = (): RoomSnapshot => ({
  roomId: "!a:hs",
  membership: "join",
  state: [
    ev("m.room.name", "", { name: "A" }),
    ev("m.room.create", "", { creator: "@a:hs" }),
    ev("m.room.member", "@z:hs", { membership: "join" }),
    ev("m.room.member", "@a:hs", { membership: "join", displayname: "\ud800 lone" }),
  ],
  accountData: [{ type: "m.tag", content: { tags: {} } }],
  prevBatch: "p1",
});
const roomInvite = (): RoomSnapshot => ({
  roomId: "!i:hs",
  membership: "invite",
  state: [],
  inviteState: [{ type: "m.room.name", state_key: "", sender: "@b:hs", content: { name: "I" } }],
  accountData: [],
});

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** A database as version 1 of the store wrote it: four stores, each room's whole snapshot. */
async function writeVersion1(
  name: string,
  rooms: readonly unknown[],
  token: string,
  keyOf = (r: unknown) => (r as { roomId: string }).roomId,
): Promise<void> {
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => {
    for (const s of ["session", "sync_token", "rooms", "account_data"]) open.result.createObjectStore(s);
  };
  const db = await request(open);
  const tx = db.transaction(["sync_token", "rooms", "account_data"], "readwrite");
  for (const r of rooms) tx.objectStore("rooms").put(r, keyOf(r));
  tx.objectStore("account_data").put({ type: "m.direct", content: {} }, "m.direct");
  tx.objectStore("sync_token").put(token, "1");
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

/** Every record of one object store of the database, read raw (the store closed). */
async function records(name: string, store: string): Promise<{ keys: IDBValidKey[]; values: unknown[] }> {
  const db = await request(indexedDB.open(name));
  const tx = db.transaction(store);
  const [keys, values] = await Promise.all([
    request(tx.objectStore(store).getAllKeys()),
    request(tx.objectStore(store).getAll()),
  ]);
  db.close();
  return { keys, values };
}

/** Counts the `room_state` records put while `run` runs. */
async function countStatePuts(run: () => Promise<void>): Promise<number> {
  const proto = IDBObjectStore.prototype;
  const put = proto.put;
  let count = 0;
  proto.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore["put"]>) {
    if (this.name === "room_state") count++;
    return put.apply(this, args);
  };
  try {
    await run();
  } finally {
    proto.put = put;
  }
  return count;
}

describe("IndexedDbClientStore layout", () => {
  it("upgrade 2: a version 1 database reads back every room exactly as before, its state now one record per event", async () => {
    const name = dbName("upgrade");
    // Two events under one key cannot be split by key: that snapshot stays whole, and loads as before.
    const doubled = {
      ...roomA(),
      roomId: "!d:hs",
      state: [ev("x", "", { v: 1 }, "1"), ev("x", "", { v: 2 }, "2")],
    };
    // Nor one filed under another room's ID (version 1 never wrote one).
    const misfiled = { ...roomA(), roomId: "!elsewhere:hs" };
    const before = [roomA(), doubled, roomInvite(), misfiled];
    await writeVersion1(name, before, "s9", (r) => (r === misfiled ? "!m:hs" : (r as RoomSnapshot).roomId));
    const s = new IndexedDbClientStore({ name });
    const back = await s.loadSync();
    assert.equal(back?.nextBatch, "s9");
    assert.deepStrictEqual(back?.rooms, before);
    assert.deepStrictEqual(back?.accountData, [{ type: "m.direct", content: {} }]);
    await s.close();
    const rooms = await records(name, "rooms");
    assert.deepEqual(
      rooms.values.map((r) => [(r as RoomSnapshot).roomId, "state" in (r as object)]),
      [
        ["!a:hs", false],
        ["!d:hs", true],
        ["!i:hs", false],
        ["!elsewhere:hs", true],
      ],
    );
    const state = await records(name, "room_state");
    assert.deepEqual(state.keys, [
      ["!a:hs", "m.room.create", ""],
      ["!a:hs", "m.room.member", "@a:hs"],
      ["!a:hs", "m.room.member", "@z:hs"],
      ["!a:hs", "m.room.name", ""],
    ]);
    // The room kept whole is written in the new layout at its next save.
    const again = new IndexedDbClientStore({ name });
    await again.saveSync({
      nextBatch: "s10",
      rooms: [{ ...doubled, state: [ev("x", "", { v: 3 })] }],
      accountData: [],
    });
    assert.deepStrictEqual((await again.loadSync())?.rooms, [
      roomA(),
      { ...doubled, state: [ev("x", "", { v: 3 })] },
      roomInvite(),
      misfiled,
    ]);
    await again.close();
  });

  it("a save writes the state events that changed, moved or are new, deletes those gone, and reads back the snapshot", async () => {
    const name = dbName("diff");
    const s = new IndexedDbClientStore({ name });
    const room: RoomSnapshot = {
      roomId: "!r:hs",
      membership: "join",
      state: Array.from({ length: 20 }, (_, i) => ev("m.room.member", `@u${i}:hs`, { membership: "join" })),
      accountData: [],
    };
    assert.equal(
      await countStatePuts(() => s.saveSync({ nextBatch: "s1", rooms: [room], accountData: [] })),
      20,
    );
    // As the client does: unchanged events are the same objects; one replaced, one added.
    const changed = [...room.state];
    changed[3] = ev("m.room.member", "@u3:hs", { membership: "leave" }, "2");
    changed.push(ev("m.room.topic", "", { topic: "t" }));
    const next = { ...room, state: changed };
    assert.equal(
      await countStatePuts(() => s.saveSync({ nextBatch: "s2", rooms: [next], accountData: [] })),
      2,
    );
    // One removed: it is deleted, the events after it move up.
    const fewer = { ...room, state: changed.filter((_, i) => i !== 19) };
    assert.equal(
      await countStatePuts(() => s.saveSync({ nextBatch: "s3", rooms: [fewer], accountData: [] })),
      1,
    );
    await s.close();
    assert.equal((await records(name, "room_state")).keys.length, 20);
    const r = new IndexedDbClientStore({ name });
    const back = await r.loadSync();
    assert.deepStrictEqual(back?.rooms, [fewer]);
    // After a load, the loaded events are what the next save compares against.
    const loaded = back?.rooms[0];
    assert.ok(loaded !== undefined);
    const puts = await countStatePuts(() =>
      r.saveSync({ nextBatch: "s4", rooms: [{ ...loaded, membership: "leave" }], accountData: [] }),
    );
    assert.equal(puts, 0);
    assert.equal((await r.loadSync())?.rooms[0]?.membership, "leave");
    await r.clear();
    await r.close();
    assert.deepEqual((await records(name, "room_state")).keys, []);
    assert.deepEqual((await records(name, "rooms")).keys, []);
  });

  it("a save with the frozen state array it last saved (the client's, state unchanged) does not read it", async () => {
    const name = dbName("same-array");
    const s = new IndexedDbClientStore({ name });
    let reads = 0;
    // The array as the client gives it (frozen), its elements' and methods' reads counted.
    const state = new Proxy(Object.freeze(roomA().state), {
      get(target, key, receiver) {
        reads++;
        return Reflect.get(target, key, receiver);
      },
    }) as StateEvent[];
    const room = { ...roomA(), state };
    await s.saveSync({ nextBatch: "s1", rooms: [room], accountData: [] });
    assert.ok(reads > 0);
    reads = 0;
    const puts = await countStatePuts(() =>
      s.saveSync({ nextBatch: "s2", rooms: [{ ...room, prevBatch: "p2" }], accountData: [] }),
    );
    assert.deepEqual({ puts, reads }, { puts: 0, reads: 0 });
    assert.deepStrictEqual((await s.loadSync())?.rooms, [{ ...roomA(), prevBatch: "p2" }]);
    // After another tab's save the same array is written again (`what another connection...`).
    const other = new IndexedDbClientStore({ name });
    await other.saveSync({ nextBatch: "o1", rooms: [{ ...roomA(), state: [] }], accountData: [] });
    await s.saveSync({ nextBatch: "s3", rooms: [room], accountData: [] });
    assert.deepStrictEqual((await other.loadSync())?.rooms, [roomA()]);
    await other.close();
    await s.close();
  });

  it("what another connection (another tab) saved in between is replaced whole by the next save", async () => {
    const name = dbName("two");
    const a = new IndexedDbClientStore({ name });
    const b = new IndexedDbClientStore({ name });
    const mine = roomA();
    await a.saveSync({ nextBatch: "s1", rooms: [mine], accountData: [] });
    const theirs = { ...mine, state: [ev("m.room.name", "", { name: "B" }, "2"), ev("m.room.x", "", {})] };
    await b.saveSync({ nextBatch: "s2", rooms: [theirs], accountData: [] });
    // `a` saves its snapshot again, the same event objects: they must be written, not assumed stored.
    await a.saveSync({ nextBatch: "s3", rooms: [mine], accountData: [] });
    assert.deepStrictEqual((await b.loadSync())?.rooms, [roomA()]);
    await a.close();
    await b.close();
  });

  it("a tab whose session the store no longer holds (another tab logged in as someone else, or out) saves nothing", async () => {
    const name = dbName("sessions");
    const session = (userId: string, deviceId: string) => ({
      homeserverUrl: "https://hs",
      userId,
      deviceId,
      accessToken: `token-${deviceId}`,
    });
    const alice = new IndexedDbClientStore({ name });
    await alice.saveSession(session("@alice:hs", "A1"));
    await alice.loadSync();
    await alice.saveSync({ nextBatch: "alice-1", rooms: [roomA()], accountData: [] });
    // Another tab logs in as Bob (the client clears a store that holds another account first).
    const bob = new IndexedDbClientStore({ name });
    await bob.clear();
    await bob.saveSession(session("@bob:hs", "B1"));
    assert.equal(await bob.loadSync(), undefined);
    await bob.saveSync({ nextBatch: "bob-1", rooms: [roomInvite()], accountData: [] });
    // Alice's tab, still open, handles another response: Bob's store must not get her rooms.
    const secret = { ...roomA(), roomId: "!secret:hs" };
    await assert.rejects(
      alice.saveSync({ nextBatch: "alice-2", rooms: [secret], accountData: [] }),
      (e: unknown) => e instanceof ClientError && e.code === "NOT_LOGGED_IN",
    );
    const reloaded = new IndexedDbClientStore({ name });
    assert.equal((await reloaded.loadSession())?.userId, "@bob:hs");
    const sync = await reloaded.loadSync();
    assert.equal(sync?.nextBatch, "bob-1");
    assert.deepEqual(
      sync?.rooms.map((r) => r.roomId),
      ["!i:hs"],
    );
    // Bob logs out in his tab (the store is cleared): a save of his other tab leaves it empty.
    await reloaded.clear();
    await assert.rejects(
      bob.saveSync({ nextBatch: "bob-2", rooms: [roomInvite()], accountData: [] }),
      (e: unknown) => e instanceof ClientError && e.code === "NOT_LOGGED_IN",
    );
    assert.equal(await reloaded.loadSync(), undefined);
    for (const s of [alice, bob, reloaded]) await s.close();
  });

  it("after another tab upgrades the database (a newer Keyroom) or deletes it, calls fail typed, not on a closed connection", async () => {
    const session = { homeserverUrl: "https://hs", userId: "@a:hs", deviceId: "A1", accessToken: "t" };
    const upgraded = dbName("upgraded");
    const s = new IndexedDbClientStore({ name: upgraded });
    await s.saveSession(session);
    await s.saveSync({ nextBatch: "s1", rooms: [roomA()], accountData: [] });
    // A newer Keyroom in another tab opens the database at a higher version: this connection closes.
    (await request(indexedDB.open(upgraded, 99))).close();
    const newer = (e: unknown) => e instanceof ClientError && e.code === "STORE_CORRUPT";
    await assert.rejects(s.loadSession(), newer);
    await assert.rejects(s.saveSync({ nextBatch: "s2", rooms: [], accountData: [] }), newer);
    await s.close();

    const deleted = dbName("deleted");
    const t = new IndexedDbClientStore({ name: deleted });
    await t.saveSession(session);
    await t.saveSync({ nextBatch: "s1", rooms: [roomA()], accountData: [] });
    await request(indexedDB.deleteDatabase(deleted));
    assert.equal(await t.loadSession(), undefined);
    // The session it synced for is gone with the database: nothing of it is saved again.
    await assert.rejects(
      t.saveSync({ nextBatch: "s2", rooms: [roomA()], accountData: [] }),
      (e: unknown) => e instanceof ClientError && e.code === "NOT_LOGGED_IN",
    );
    assert.equal(await t.loadSync(), undefined);
    await t.close();
  });

  it("saves and forgets rooms with the factory and key range passed in, where the runtime has no IDBKeyRange", async () => {
    const name = dbName("passed-in");
    const globals = globalThis as { IDBKeyRange?: typeof IDBKeyRange };
    const keyRange = globals.IDBKeyRange;
    delete globals.IDBKeyRange; // Node without fake-indexeddb/auto
    try {
      const s = new IndexedDbClientStore({ name, indexedDB, keyRange });
      await s.saveSync({ nextBatch: "s1", rooms: [roomA(), roomInvite()], accountData: [] });
      await s.saveSync({ nextBatch: "s2", rooms: [], accountData: [], forgotten: ["!a:hs"] });
      assert.deepEqual(
        (await s.loadSync())?.rooms.map((r) => r.roomId),
        ["!i:hs"],
      );
      await s.close();
    } finally {
      globals.IDBKeyRange = keyRange;
    }
    assert.deepEqual((await records(name, "room_state")).keys, []);
  });

  it("refuses a state record of no stored room, or one without its place, with STORE_CORRUPT", async () => {
    const name = dbName("corrupt");
    const s = new IndexedDbClientStore({ name });
    await s.saveSync({ nextBatch: "s1", rooms: [roomA()], accountData: [] });
    await s.close();
    for (const bad of [
      { roomId: "!gone:hs", i: 0, event: ev("m.room.name", "", {}) },
      { roomId: "!a:hs", event: ev("m.room.topic", "", {}) },
    ]) {
      const db = await request(indexedDB.open(name));
      const tx = db.transaction("room_state", "readwrite");
      await request(tx.objectStore("room_state").put(bad, [bad.roomId, "m.room.zz", ""]));
      db.close();
      const r = new IndexedDbClientStore({ name });
      await assert.rejects(
        r.loadSync(),
        (e: unknown) => e instanceof ClientError && e.code === "STORE_CORRUPT",
      );
      await r.close();
      const db2 = await request(indexedDB.open(name));
      await request(
        db2
          .transaction("room_state", "readwrite")
          .objectStore("room_state")
          .delete([bad.roomId, "m.room.zz", ""]),
      );
      db2.close();
    }
  });
});
