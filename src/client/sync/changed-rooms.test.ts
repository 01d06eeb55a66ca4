// Rooms changed outside sync (a member list fetched before a room key share) are saved to the
// client store with the position of the last response handled: at once, after the saves already
// queued, or with the response being handled; never with part of a response applied.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StateEvent, SyncResponse } from "../../wire/index.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import { TypedEmitter } from "../events/emitter.ts";
import type { ClientEventMap } from "../events/types.ts";
import { offlineSyncLoop } from "../test-support/offline-sync-loop.ts";
import { SyncedState } from "./state.ts";

const ROOM = "!r:hs";

const member = (user: string, membership: string): StateEvent => ({
  event_id: `$m-${user}-${membership}`,
  type: "m.room.member",
  state_key: user,
  sender: user,
  origin_server_ts: 1,
  content: { membership },
});

const response = (next: string, state: StateEvent[]): SyncResponse => ({
  next_batch: next,
  rooms: { join: { [ROOM]: { state: { events: state }, timeline: { events: [] } } } },
});

function setUp() {
  const store = new MemoryClientStore();
  const synced = new SyncedState();
  const emitter = new TypedEmitter<ClientEventMap>();
  const loop = offlineSyncLoop(store, "@me:hs", synced, emitter);
  /** `user`'s membership in the stored room, and the stored position. */
  const stored = async (user: string) => {
    const snap = await store.loadSync();
    const ev = snap?.rooms.find((r) => r.roomId === ROOM)?.state.find((e) => e.state_key === user);
    return {
      nextBatch: snap?.nextBatch,
      membership: ev === undefined ? undefined : String(ev.content.membership),
    };
  };
  /** A member list fetch's correction, as `SyncRunner.membersFetched` records it. */
  const correct = (ev: StateEvent) => {
    const room = synced.room(ROOM);
    assert.ok(room);
    room.applyState(ev);
    synced.changedOutsideSync(room);
  };
  return { loop, emitter, synced, stored, correct };
}

describe("rooms changed outside sync", () => {
  it("are saved at once with the position of the last response", async () => {
    const { loop, stored, correct } = setUp();
    await loop.feed(response("s1", [member("@bob:hs", "join")]));
    correct(member("@bob:hs", "leave"));
    assert.deepEqual(await stored("@bob:hs"), { nextBatch: "s1", membership: "join" });
    await loop.saveChangedRooms();
    assert.deepEqual(await stored("@bob:hs"), { nextBatch: "s1", membership: "leave" });
  });

  it("wait for the saves queued before, and go after them", async () => {
    const { loop, emitter, stored, correct } = setUp();
    await loop.feed(response("s1", [member("@bob:hs", "join")]));
    let release = () => {};
    let entered = () => {};
    const inSettle = new Promise<void>((r) => {
      entered = r;
    });
    const off = emitter.on("sync.settle", () => {
      entered();
      return new Promise<void>((r) => {
        release = r;
      });
    });
    const fed = loop.feed(response("s2", [member("@carol:hs", "join")]));
    await inSettle; // s2's save waits for this listener
    await new Promise<void>((r) => setImmediate(r)); // and s2's handling is over
    off();
    correct(member("@bob:hs", "leave"));
    const saving = loop.saveChangedRooms();
    assert.deepEqual(await stored("@bob:hs"), { nextBatch: "s1", membership: "join" });
    release();
    await Promise.all([fed, saving]);
    assert.deepEqual(await stored("@bob:hs"), { nextBatch: "s2", membership: "leave" });
    assert.equal((await stored("@carol:hs")).membership, "join");
  });

  it("while a response is handled, go with its save, not with part of it applied", async () => {
    const { loop, emitter, stored, correct } = setUp();
    await loop.feed(response("s1", [member("@bob:hs", "join")]));
    const attempts: (string | undefined)[] = [];
    emitter.on("room.state", async (_room, ev) => {
      if (ev.state_key !== "@carol:hs") return;
      // Carol's join is applied, Dave's (later in the response) not yet.
      correct(member("@bob:hs", "leave"));
      await loop.saveChangedRooms();
      attempts.push((await stored("@bob:hs")).membership);
    });
    await loop.feed(response("s2", [member("@carol:hs", "join"), member("@dave:hs", "join")]));
    assert.deepEqual(attempts, ["join"], "not saved while the response was half applied");
    assert.deepEqual(await stored("@bob:hs"), { nextBatch: "s2", membership: "leave" });
    assert.equal((await stored("@dave:hs")).membership, "join");
  });
});
