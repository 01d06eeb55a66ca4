import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ReplayRecord } from "../../store/records.ts";
import type { MachineStore } from "../machine-context.ts";
import { REPLAY_SESSION_LOAD, ReplayGuard } from "./replay.ts";

/** Just enough of a store: replay records, and counts of lookups (one index, a whole session). */
function fakeStore() {
  const saved = new Map<string, ReplayRecord>();
  const key = (r: string, s: string, i: number) => JSON.stringify([r, s, i]);
  let lookups = 0;
  let loads = 0;
  let batches = 0;
  const store = {
    getReplay: async (roomId: string, sessionId: string, index: number) => {
      lookups++;
      return saved.get(key(roomId, sessionId, index));
    },
    getReplays: async (roomId: string, sessionId: string, limit: number) => {
      loads++;
      return [...saved.values()]
        .filter((r) => r.roomId === roomId && r.sessionId === sessionId)
        .sort((a, b) => a.messageIndex - b.messageIndex)
        .slice(0, limit);
    },
    getReplaysOfSessions: async (sessions: { roomId: string; sessionId: string }[], limit: number) => {
      batches++;
      return sessions.flatMap((s) =>
        [...saved.values()]
          .filter((r) => r.roomId === s.roomId && r.sessionId === s.sessionId)
          .sort((a, b) => a.messageIndex - b.messageIndex)
          .slice(0, limit),
      );
    },
  } as unknown as MachineStore;
  const save = (records: readonly ReplayRecord[]) => {
    for (const r of records) saved.set(key(r.roomId, r.sessionId, r.messageIndex), r);
  };
  return { store, save, lookups: () => lookups, loads: () => loads, batches: () => batches };
}

const record = (sessionId: string, messageIndex: number, eventId: string): ReplayRecord => ({
  roomId: "!r",
  sessionId,
  messageIndex,
  eventId,
  timestamp: 0,
});

const admit = (
  g: ReplayGuard,
  store: MachineStore,
  state: ReturnType<ReplayGuard["session"]>,
  i: number,
  id: string,
) => g.admit(store, state, i, id, 0);

describe("replay guard", () => {
  it("preloads many sessions' records in one store call; they are then judged from memory", async () => {
    const { store, save, lookups, loads, batches } = fakeStore();
    save([record("A", 0, "$a0"), record("A", 3, "$a3")]);
    save(Array.from({ length: REPLAY_SESSION_LOAD }, (_, i) => record("Full", i, `$f${i}`)));
    const g = new ReplayGuard();
    const a = g.session("!r", "A");
    const empty = g.session("!r", "Empty");
    const full = g.session("!r", "Full");
    const fresh = g.fresh("!r", "Fresh");
    await g.preload(store, [a, empty, full, fresh, a]);
    assert.equal(batches(), 1);
    assert.equal(await admit(g, store, a, 0, "$a0"), true);
    assert.equal(await admit(g, store, a, 3, "$other"), false);
    assert.equal(await admit(g, store, a, 1, "$a1"), true);
    assert.equal(await admit(g, store, empty, 0, "$e0"), true);
    assert.equal(lookups() + loads(), 0);
    // A session with more records than one read holds stays incomplete: unknown indexes are asked.
    assert.equal(await admit(g, store, full, 1, "$f1"), true);
    assert.equal(await admit(g, store, full, REPLAY_SESSION_LOAD + 5, "$x"), true);
    assert.equal(lookups(), 1);
    assert.equal(loads(), 0);
    // Read or complete states are not read again.
    await g.preload(store, [a, empty, full, fresh]);
    assert.equal(batches(), 1);
  });

  it("a session new to this process is judged from memory, without store lookups", async () => {
    const { store, lookups } = fakeStore();
    const g = new ReplayGuard();
    const state = g.fresh("!r", "S");
    assert.equal(await admit(g, store, state, 0, "$a"), true);
    assert.equal(await admit(g, store, state, 0, "$a"), true);
    assert.equal(await admit(g, store, state, 0, "$b"), false);
    assert.equal(await admit(g, store, state, 1, "$c"), true);
    assert.equal(lookups(), 0);
  });

  it("a session loaded from the store reads its records once, then judges from memory", async () => {
    const { store, save, lookups, loads } = fakeStore();
    save([record("S", 3, "$old"), record("S", 9, "$nine"), record("T", 4, "$other")]);
    const g = new ReplayGuard();
    const state = g.session("!r", "S");
    assert.equal(await admit(g, store, state, 3, "$new"), false);
    assert.equal(await admit(g, store, state, 3, "$old"), true);
    assert.equal(await admit(g, store, state, 4, "$x"), true, "another session's record at 4");
    assert.equal(await admit(g, store, state, 4, "$y"), false);
    assert.equal(await admit(g, store, state, 9, "$forged"), false);
    assert.equal(await admit(g, store, state, 5, "$five"), true);
    assert.equal(state.complete, true);
    assert.deepEqual([loads(), lookups()], [1, 0]);
    // New records ride along with the next save, as ever.
    assert.deepEqual(
      g.take(true).map((r) => [r.messageIndex, r.eventId]),
      [
        [4, "$x"],
        [5, "$five"],
      ],
    );
  });

  it("a session with more records than it reads at once falls back to one lookup per index", async () => {
    const { store, save, lookups, loads } = fakeStore();
    save(Array.from({ length: REPLAY_SESSION_LOAD + 1 }, (_, i) => record("S", i, `$e${i}`)));
    const g = new ReplayGuard();
    const state = g.session("!r", "S");
    assert.equal(await admit(g, store, state, 0, "$e0"), true);
    assert.equal(await admit(g, store, state, REPLAY_SESSION_LOAD, "$forged"), false);
    assert.equal(await admit(g, store, state, REPLAY_SESSION_LOAD + 1, "$new"), true);
    assert.equal(state.complete, false);
    assert.deepEqual([loads(), lookups()], [1, 2]);
  });

  it("after another process may have written, a session's records are read again", async () => {
    const { store, save, loads } = fakeStore();
    const g = new ReplayGuard();
    const state = g.session("!r", "S");
    assert.equal(await admit(g, store, state, 1, "$a"), true);
    save(g.take(true));
    save([record("S", 2, "$elsewhere")]);
    g.invalidate();
    assert.equal(await admit(g, store, state, 2, "$forged"), false);
    assert.equal(await admit(g, store, state, 1, "$a"), true);
    assert.equal(loads(), 2);
  });

  it("over its bound it drops whole saved sessions, which then fall back to the store", async () => {
    const { store, save, lookups, loads } = fakeStore();
    const g = new ReplayGuard(4);
    const first = g.fresh("!r", "S1");
    for (let i = 0; i < 3; i++) assert.equal(await admit(g, store, first, i, `$e${i}`), true);
    save(g.take(true));
    const second = g.fresh("!r", "S2");
    for (let i = 0; i < 3; i++) assert.equal(await admit(g, store, second, i, `$f${i}`), true);
    assert.equal(first.dropped, true, "the older, saved session was dropped");
    assert.equal(second.dropped, false, "a session with unsaved records is kept");
    // A holder of the dropped state asks again and gets one that is not complete: the replay of
    // index 1 is caught by the store.
    const again = g.session("!r", "S1");
    assert.notEqual(again, first);
    assert.equal(again.complete, false);
    assert.equal(await admit(g, store, again, 1, "$forged"), false);
    assert.deepEqual([loads(), lookups()], [1, 0]);
  });

  it("sessions without records count too: states read ahead for events that then failed stay bounded", () => {
    const g = new ReplayGuard(10);
    const states = Array.from({ length: 50 }, (_, i) => g.session("!r", `S${i}`));
    assert.equal(states.filter((s) => !s.dropped).length, 10);
    assert.equal(states.at(-1)?.dropped, false, "the newest state is kept");
    assert.equal(states[0]?.dropped, true, "the oldest went first");
  });

  it("records of a failed save are handed out again", () => {
    const g = new ReplayGuard();
    const state = g.fresh("!r", "S");
    g.admitCached(state, 0, "$a", 5);
    assert.deepEqual(g.take(false), [], "below a batch, nothing is written on its own");
    const taken = g.take(true);
    assert.equal(taken.length, 1);
    g.restore(taken);
    assert.deepEqual(g.takeAll(), taken);
  });
});
