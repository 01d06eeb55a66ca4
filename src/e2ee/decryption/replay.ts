/**
 * Replay detection: the first event seen at a Megolm message index owns it; the same ciphertext
 * under another event ID is refused.
 *
 * Records are kept in memory per session (bounded) and written to the store in batches, riding
 * along with the next step that saves anyway: decrypting a timeline must not cost a database
 * transaction per event. A crash can lose the last unsaved batch (at most
 * `REPLAY_FLUSH_BATCH - 1` records), which only reopens those indexes to one replay.
 *
 * For a session that began in this process, memory holds every record there is, so a new index
 * is admitted without asking the store. For a session loaded from the store, the first index
 * memory does not know loads the session's records at once (up to `REPLAY_SESSION_LOAD`), after
 * which memory is complete for it too: a timeline's later events, and a session evicted from the
 * session cache and read again, cost no lookup. A session with more records than that is looked
 * up once per index seen for the first time here.
 */

import type { ReplayRecord } from "../../store/records.ts";
import { MAX_INBOUND_SESSIONS_PER_LOOKUP } from "../../store/store.ts";
import type { MachineStore } from "../machine-context.ts";

/**
 * Records remembered in memory, each session's state counting as one more (whole sessions dropped,
 * oldest first; the store still has them). Counting the states bounds those holding no record yet,
 * e.g. read ahead for a batch whose events then failed their checks.
 */
export const REPLAY_CACHE_SIZE = 100_000;
/** Unsaved records that force a write of their own. */
export const REPLAY_FLUSH_BATCH = 256;
/**
 * Records of one session read at once when it is first used here (a session rotates every 100
 * messages by default, so most hold fewer); with more, lookups go index by index.
 */
export const REPLAY_SESSION_LOAD = 512;

/** What this process knows of one session's used indexes. */
export class SessionReplays {
  readonly roomId: string;
  readonly sessionId: string;
  /** Message index → the event ID that owns it. */
  readonly owners = new Map<number, string>();
  /** True when `owners` is all there is: the store holds no record that memory lacks. */
  complete: boolean;
  /** Records of this session not yet written (the session is not dropped while there are any). */
  unsaved = 0;
  /** Set when the guard dropped this state to stay in bounds: holders must ask for a new one. */
  dropped = false;
  /** The session's records were read at once (since the last `invalidate`). */
  loaded = false;

  constructor(roomId: string, sessionId: string, complete: boolean) {
    this.roomId = roomId;
    this.sessionId = sessionId;
    this.complete = complete;
  }
}

// Unambiguous: the room ID is length-prefixed.
const keyOf = (roomId: string, sessionId: string): string => `${roomId.length}:${roomId}${sessionId}`;

interface Unsaved {
  readonly record: ReplayRecord;
  readonly state: SessionReplays;
}

export class ReplayGuard {
  readonly #sessions = new Map<string, SessionReplays>();
  readonly #limit: number;
  #size = 0;
  #unsaved: Unsaved[] = [];

  /** `limit`: records kept in memory (a parameter so tests can reach it). */
  constructor(limit = REPLAY_CACHE_SIZE) {
    this.#limit = limit;
  }

  /** The state of one session, created (incomplete: the store may know more) if there is none. */
  session(roomId: string, sessionId: string): SessionReplays {
    const key = keyOf(roomId, sessionId);
    let state = this.#sessions.get(key);
    if (state === undefined) {
      state = new SessionReplays(roomId, sessionId, false);
      // Made room for before it is added, so the new state is never the one dropped.
      if (++this.#size > this.#limit) this.#shrink();
      this.#sessions.set(key, state);
    }
    return state;
  }

  /**
   * A session that was in no store until now: nothing can have been recorded for it elsewhere,
   * so memory is the whole truth about it.
   */
  fresh(roomId: string, sessionId: string): SessionReplays {
    const state = this.session(roomId, sessionId);
    state.complete = true;
    return state;
  }

  /**
   * The verdict from memory alone: whether `eventId` may own `index` (recording it when it is the
   * first), or undefined when only the store can tell (then call `admit`).
   */
  admitCached(state: SessionReplays, index: number, eventId: string, timestamp: number): boolean | undefined {
    const owner = state.owners.get(index);
    if (owner !== undefined) return owner === eventId;
    if (!state.complete) return undefined;
    this.#record(state, index, eventId, timestamp);
    return true;
  }

  /** `admitCached`, asking the store about an index memory has not seen. */
  async admit(
    store: MachineStore,
    state: SessionReplays,
    index: number,
    eventId: string,
    timestamp: number,
  ): Promise<boolean> {
    const cached = this.admitCached(state, index, eventId, timestamp);
    if (cached !== undefined) return cached;
    if (!state.loaded) {
      const verdict = await this.#load(store, state, index, eventId, timestamp);
      if (verdict !== undefined) return verdict;
    }
    const owner = (await store.getReplay(state.roomId, state.sessionId, index))?.eventId;
    if (owner === undefined) {
      this.#record(state, index, eventId, timestamp);
      return true;
    }
    this.#remember(state, index, owner);
    return owner === eventId;
  }

  /**
   * Whether any event decrypted with this session, here or (as the store says) elsewhere: memory
   * first, the store when memory does not know all of the session's records.
   */
  async anyRecorded(store: MachineStore, roomId: string, sessionId: string): Promise<boolean> {
    const state = this.#sessions.get(keyOf(roomId, sessionId));
    if (state !== undefined && state.owners.size > 0) return true;
    if (state?.complete === true) return false;
    return (await store.getReplays(roomId, sessionId, 1)).length > 0;
  }

  /**
   * Reads the records of these sessions at once, as `admit` would read each one's on its first
   * index memory does not know: one store call (per `MAX_INBOUND_SESSIONS_PER_LOOKUP` sessions)
   * for a batch of events instead of one per session. States already read or complete are skipped.
   */
  async preload(store: MachineStore, states: readonly SessionReplays[]): Promise<void> {
    const todo = [...new Set(states)].filter((s) => !s.loaded && !s.complete && !s.dropped);
    for (let start = 0; start < todo.length; start += MAX_INBOUND_SESSIONS_PER_LOOKUP) {
      const chunk = todo.slice(start, start + MAX_INBOUND_SESSIONS_PER_LOOKUP);
      const records = await store.getReplaysOfSessions(
        chunk.map((s) => ({ roomId: s.roomId, sessionId: s.sessionId })),
        REPLAY_SESSION_LOAD,
      );
      const bySession = new Map<string, ReplayRecord[]>();
      for (const r of records) {
        const key = keyOf(r.roomId, r.sessionId);
        const list = bySession.get(key);
        if (list === undefined) bySession.set(key, [r]);
        else list.push(r);
      }
      for (const state of chunk) {
        if (state.loaded || state.complete) continue; // (a state can only change here if repeated)
        this.#apply(state, bySession.get(keyOf(state.roomId, state.sessionId)) ?? []);
      }
    }
  }

  /** A session's records as read at once: memory learns them, and is complete if they were all. */
  #apply(state: SessionReplays, records: readonly ReplayRecord[]): void {
    state.loaded = true;
    for (const r of records) {
      // Memory's own owners stay (they agree with the store, or are not saved yet).
      if (!state.dropped && !state.owners.has(r.messageIndex))
        this.#remember(state, r.messageIndex, r.eventId);
    }
    if (records.length < REPLAY_SESSION_LOAD && !state.dropped) state.complete = true;
  }

  /**
   * Reads the session's records at once; the verdict on `index` when they tell, else undefined
   * (there were too many to hold, so memory stays incomplete).
   */
  async #load(
    store: MachineStore,
    state: SessionReplays,
    index: number,
    eventId: string,
    timestamp: number,
  ): Promise<boolean | undefined> {
    state.loaded = true;
    const records = await store.getReplays(state.roomId, state.sessionId, REPLAY_SESSION_LOAD);
    let owner: string | undefined;
    for (const r of records) {
      if (r.messageIndex === index) owner = r.eventId;
      // Memory's own owners stay (they agree with the store, or are not saved yet).
      if (!state.dropped && !state.owners.has(r.messageIndex))
        this.#remember(state, r.messageIndex, r.eventId);
    }
    const whole = records.length < REPLAY_SESSION_LOAD && !state.dropped;
    if (whole) state.complete = true;
    if (owner !== undefined) return owner === eventId;
    if (!whole) return undefined;
    this.#record(state, index, eventId, timestamp);
    return true;
  }

  #record(state: SessionReplays, index: number, eventId: string, timestamp: number): void {
    const record = {
      roomId: state.roomId,
      sessionId: state.sessionId,
      messageIndex: index,
      eventId,
      timestamp,
    };
    this.#unsaved.push({ record, state });
    state.unsaved++;
    this.#remember(state, index, eventId);
  }

  #remember(state: SessionReplays, index: number, eventId: string): void {
    state.owners.set(index, eventId);
    if (++this.#size > this.#limit) this.#shrink();
  }

  /** Drops whole sessions, oldest first, skipping those with unsaved records, until in bounds. */
  #shrink(): void {
    for (const [key, state] of this.#sessions) {
      if (this.#size <= this.#limit) return;
      if (state.unsaved > 0) continue;
      this.#sessions.delete(key);
      this.#size -= state.owners.size + 1;
      state.dropped = true;
    }
  }

  /** The records to write with this step: all of them if it saves anyway, else only a full batch. */
  take(stepSaves: boolean): ReplayRecord[] {
    if (!stepSaves && this.#unsaved.length < REPLAY_FLUSH_BATCH) return [];
    const out = this.#unsaved;
    this.#unsaved = [];
    for (const u of out) u.state.unsaved--;
    return out.map((u) => u.record);
  }

  /** A save failed: its records are unsaved again. */
  restore(records: readonly ReplayRecord[]): void {
    const back = records.map((record) => {
      const state = this.session(record.roomId, record.sessionId);
      state.unsaved++;
      return { record, state };
    });
    this.#unsaved = [...back, ...this.#unsaved];
  }

  /**
   * Another process may have recorded indexes since: no session is complete any more, so each
   * index memory has not seen is looked up in the store again. Known owners stay (they are facts),
   * and so do unsaved records (they ride along with the next save, as before).
   */
  invalidate(): void {
    for (const state of this.#sessions.values()) {
      state.complete = false;
      state.loaded = false;
    }
  }

  /** Everything unsaved (on close). */
  takeAll(): ReplayRecord[] {
    return this.take(true);
  }
}
