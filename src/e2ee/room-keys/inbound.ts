/**
 * Inbound Megolm sessions: receiving `m.room_key` (and, through key requests, forwarded keys),
 * keeping the best copy of each session, withheld notices, and a bounded cache of live sessions.
 */

import { readSharedHistory } from "../../crypto/key-export/exported-room-key.ts";
import { InboundGroupSession, MegolmError } from "../../crypto/megolm/index.ts";
import { isDamagedRecord } from "../../store/errors.ts";
import type {
  InboundGroupSessionRecord,
  RivalRoomKeyId,
  RivalRoomKeyRecord,
  RoomSessionKey,
  WithheldRecord,
} from "../../store/records.ts";
import {
  MAX_INBOUND_SESSIONS_PER_LOOKUP,
  MAX_RIVAL_ROOM_KEYS_PER_SESSION,
  MAX_STORED_RIVAL_ROOM_KEYS,
} from "../../store/store.ts";
import * as z from "../../wire/zod.ts";
import type { SessionReplays } from "../decryption/replay.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { idSchema, reasonSchema } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import { NO_OLM_CODE } from "./no-olm.ts";
import { NoOlmReceived } from "./no-olm-received.ts";

/**
 * Live inbound sessions kept unpickled; older ones are re-read from the store on demand. Reading
 * one back (row, decryption at rest, unpickling, its replay records) costs about as much as
 * decrypting an event, so the cache holds the sessions of many busy rooms: about 2 KB each, at
 * most ~20 MB.
 */
export const INBOUND_SESSION_CACHE_SIZE = 10_000;
/**
 * Records of sessions an import or a backup restore saved, kept (oldest dropped first) once their
 * step is saved: their events usually follow (history read after a restore), and a record in memory
 * spares its first event the store read and the decryption at rest (~35 µs), leaving the
 * unpickling. Records only (no live ratchet), ~0.6 KB each on the heap: at most ~6 MB.
 */
export const SAVED_IMPORT_RECORDS = 10_000;
/**
 * Rival copies kept at most: direct shares of a session we hold, from a device other than the one
 * that gave us our copy (see `add`). Anyone in a room can send them, so they are bounded (oldest
 * dropped first), as the store bounds them (`MAX_STORED_RIVAL_ROOM_KEYS`), and at most
 * `MAX_RIVAL_ROOM_KEYS_PER_SESSION` of one session.
 */
export const MAX_RIVAL_ROOM_KEYS = MAX_STORED_RIVAL_ROOM_KEYS;

/** Where a session came from: the parts of its record that its pickle does not carry. */
type SessionMeta = Omit<InboundGroupSessionRecord, "pickle" | "sessionId" | "firstKnownIndex" | "backedUp">;

/**
 * How well a copy's claim about who created the session is authenticated: an `m.room_key` came
 * over Olm from the device owning `senderKey` itself; a forward or an import only repeats a claim.
 */
function authentication(m: SessionMeta): number {
  return m.forwarded || m.imported ? 0 : 1;
}

export interface InboundEntry {
  record: InboundGroupSessionRecord;
  readonly session: InboundGroupSession;
  /** The session reached no store before this process: nothing was decrypted with it elsewhere. */
  readonly createdHere?: boolean;
  /** The replay guard's state for this session, kept here so decryption finds it without a lookup. */
  replays?: SessionReplays;
}

const roomKeySchema = z.object({
  algorithm: z.literal(MEGOLM_ALGORITHM),
  room_id: idSchema,
  session_id: idSchema,
  session_key: z.string().check(z.minLength(1)),
});

const withheldSchema = z.object({
  algorithm: z.string(),
  code: idSchema,
  reason: z.optional(reasonSchema),
  room_id: z.optional(idSchema),
  session_id: z.optional(idSchema),
  sender_key: z.optional(idSchema),
});

/** A key that entered the store: pending events for it can be retried. */
export interface RoomKeyUpdate {
  readonly roomId: string;
  readonly sessionId: string;
}

const cacheKey = (roomId: string, sessionId: string): string => `${roomId}\u0000${sessionId}`;
const rivalKey = (r: RivalRoomKeyId): string => `${cacheKey(r.roomId, r.sessionId)}\u0000${r.senderKey}`;

/**
 * Damaged inbound session records remembered (as reported, and as damaged for the error message)
 * at most; beyond, more are still read as absent, unreported.
 */
export const MAX_DAMAGED_INBOUND_SESSIONS = 1000;

export class InboundSessions {
  readonly #ctx: MachineContext;
  /**
   * Stored records found damaged (failed authentication, malformed), by `cacheKey`: read as
   * absent (their events fail as `UNKNOWN_SESSION` until a good copy replaces the row), and each
   * reported once (`takeDamaged`). Rebuilt with the parts.
   */
  readonly #damagedSeen = new Set<string>();
  #damaged: RoomSessionKey[] = [];
  readonly #cache = new Map<string, InboundEntry>();
  /**
   * Records of sessions an import brought in during this step, not yet in the store: later keys
   * and the retried events of the same step must find them (unpickled again on demand), and they
   * are dropped once the step is saved (`settle`). Only the record is held, not a live session: an
   * import step holds thousands, so importing neither evicts the sessions in use nor keeps
   * thousands of live ratchets alive for the garbage collector to copy.
   */
  #unsaved = new Map<string, { record: InboundGroupSessionRecord; createdHere: boolean }>();
  /**
   * Records an import step saved (see `SAVED_IMPORT_RECORDS`), by `cacheKey`: the store's copy,
   * read from here instead until the session is used (then it moves to `#cache`) or written again.
   * `createdHere` as in `#unsaved`, and as for a live entry: the parts are rebuilt (and this
   * dropped) whenever another process may have written the store.
   */
  #saved = new Map<string, { record: InboundGroupSessionRecord; createdHere: boolean }>();
  /**
   * Rival copies (see `add`), by `rivalKey`, first stored first: what the store holds (read when
   * the parts are built, `loadRivals`) and what this step added, bounded as the store bounds them.
   */
  readonly #rivals = new Map<string, RivalRoomKeyRecord>();
  /** How many of `#rivals` each session has, by `cacheKey`: decryption asks it of every event. */
  readonly #rivalCounts = new Map<string, number>();
  /**
   * What `prefetch` read for the step in progress: the stored record, or null when the store holds
   * none. Each is used once (by the `#load` it was read for) and all are dropped when the step
   * ends (`settle`, `dropPrefetched`), so they never stand in for the store across steps.
   */
  #prefetched = new Map<string, InboundGroupSessionRecord | null>();

  /** `m.no_olm` notices: devices of others that could not set up an Olm session with us. */
  readonly noOlm: NoOlmReceived;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
    this.noOlm = new NoOlmReceived(ctx);
  }

  /** Reads the rival copies the store holds (when the parts are built: they are few). */
  async loadRivals(): Promise<void> {
    for (const r of await this.#ctx.store.getRivalRoomKeys()) this.#keepRival(r);
  }

  /** The session if it is in memory, without touching the store (the decryption fast path). */
  cached(roomId: string, sessionId: string): InboundEntry | undefined {
    return this.#cached(cacheKey(roomId, sessionId));
  }

  #cached(key: string): InboundEntry | undefined {
    const hit = this.#cache.get(key);
    // Refresh recency (a Map keeps insertion order), which only matters once eviction is near.
    if (hit !== undefined && this.#cache.size > INBOUND_SESSION_CACHE_SIZE / 2) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
    }
    return hit;
  }

  async get(roomId: string, sessionId: string): Promise<InboundEntry | undefined> {
    return (await this.#load(cacheKey(roomId, sessionId), roomId, sessionId)).entry;
  }

  /**
   * The record of the session we hold, for a caller that reads only its fields: like `get`, but a
   * record this step wrote is read as it is, not unpickled and cached as a live session (a restore
   * checks every key it wrote this way; unpickling them cost a tenth of the restore and filled the
   * cache with sessions nobody was decrypting with).
   */
  async record(roomId: string, sessionId: string): Promise<InboundGroupSessionRecord | undefined> {
    const key = cacheKey(roomId, sessionId);
    const live = this.#cache.get(key);
    if (live !== undefined) return live.record;
    const unsaved = this.#unsaved.get(key);
    if (unsaved !== undefined) return unsaved.record;
    const saved = this.#saved.get(key);
    if (saved !== undefined) return saved.record;
    return (await this.#load(key, roomId, sessionId)).entry?.record;
  }

  /**
   * The session, and whether the store holds a record of it (even one that does not unpickle).
   * `key` is `cacheKey(roomId, sessionId)`, built once by the caller (an import step looks each
   * key up in several maps).
   */
  async #load(
    key: string,
    roomId: string,
    sessionId: string,
  ): Promise<{ entry: InboundEntry | undefined; stored: boolean }> {
    const hit = this.#cached(key);
    if (hit !== undefined) return { entry: hit, stored: true };
    const unsaved = this.#unsaved.get(key);
    if (unsaved !== undefined) {
      // Written by this step (the pickle about to be saved) and now in use, e.g. by a retried
      // event: cached until the step is saved, so its replay state stays with it meanwhile.
      const session = InboundGroupSession.fromPickle(unsaved.record.pickle);
      const entry = { record: unsaved.record, session, createdHere: unsaved.createdHere };
      this.#remember(key, entry);
      // Its replay state is made with this entry: a later one (once evicted, or kept by `settle`)
      // must not start a fresh state claiming memory knows every index (it may have been dropped).
      if (unsaved.createdHere) this.#unsaved.set(key, { record: unsaved.record, createdHere: false });
      return { entry, stored: true };
    }
    const saved = this.#takeSaved(key);
    if (saved !== undefined) return { entry: this.#live(key, saved.record, saved.createdHere), stored: true };
    const prefetched = this.#prefetched.get(key);
    let record: InboundGroupSessionRecord | undefined;
    if (prefetched !== undefined) {
      this.#prefetched.delete(key);
      record = prefetched ?? undefined;
    } else {
      try {
        record = await this.#ctx.store.getInboundGroupSession(roomId, sessionId);
      } catch (e) {
        if (!isDamagedRecord(e)) throw e;
        this.#noteDamaged(key, roomId, sessionId);
        // Held but unreadable, as a record that does not unpickle: a good copy replaces it.
        return { entry: undefined, stored: true };
      }
    }
    if (record === undefined) return { entry: undefined, stored: false };
    return { entry: this.#live(key, record), stored: true };
  }

  /** A stored record unpickled and cached, or undefined when it does not unpickle. */
  #live(key: string, record: InboundGroupSessionRecord, createdHere = false): InboundEntry | undefined {
    let session: InboundGroupSession;
    try {
      session = InboundGroupSession.fromPickle(record.pickle);
    } catch {
      return undefined; // unreadable: a good copy may replace it
    }
    const entry = createdHere ? { record, session, createdHere } : { record, session };
    this.#remember(key, entry);
    return entry;
  }

  /**
   * `cached`, or else the session as `prefetch` read it for this step, without waiting (a batch's
   * events find their sessions this way); undefined when only `get` can tell.
   */
  cachedOrPrefetched(roomId: string, sessionId: string): InboundEntry | undefined {
    const key = cacheKey(roomId, sessionId);
    const hit = this.#cached(key);
    if (hit !== undefined) return hit;
    const saved = this.#takeSaved(key);
    if (saved !== undefined) return this.#live(key, saved.record, saved.createdHere);
    if (this.#prefetched.size === 0) return undefined;
    const record = this.#prefetched.get(key);
    // Not read ahead, read ahead as absent, or written by this step: `get` knows what to do.
    if (record === undefined || record === null || this.#unsaved.has(key)) return undefined;
    this.#prefetched.delete(key);
    return this.#live(key, record) ?? undefined;
  }

  /**
   * Reads the stored copies of these sessions in one store call (per
   * `MAX_INBOUND_SESSIONS_PER_LOOKUP`) rather than one call each, for the step in progress: an
   * import step's keys, a batch of events about to be decrypted. Sessions in memory are skipped.
   * Only records are held (no unpickling) until the step uses them or ends.
   */
  async prefetch(keys: Iterable<RoomSessionKey>): Promise<RoomSessionKey[]> {
    const wanted = new Map<string, RoomSessionKey>();
    for (const k of keys) {
      const key = cacheKey(k.roomId, k.sessionId);
      if (this.#cache.has(key) || this.#unsaved.has(key) || this.#saved.has(key) || this.#prefetched.has(key))
        continue;
      wanted.set(key, k);
    }
    const found: RoomSessionKey[] = [];
    if (wanted.size === 0) return found;
    // The keys built above are reused (an import step prefetches thousands; each one built again
    // would be one more string per key alive until the step ends).
    const all = [...wanted];
    for (let start = 0; start < all.length; start += MAX_INBOUND_SESSIONS_PER_LOOKUP) {
      const chunk: RoomSessionKey[] = [];
      for (const [key, k] of all.slice(start, start + MAX_INBOUND_SESSIONS_PER_LOOKUP)) {
        this.#prefetched.set(key, null);
        chunk.push(k);
      }
      let records: InboundGroupSessionRecord[];
      try {
        records = await this.#ctx.store.getInboundGroupSessions(chunk);
      } catch (e) {
        if (!isDamagedRecord(e)) throw e;
        // One damaged record fails the whole read: these are read one by one instead (`#load`),
        // so that only the damaged one's events fail.
        for (const k of chunk) this.#prefetched.delete(cacheKey(k.roomId, k.sessionId));
        continue;
      }
      for (const r of records) {
        const key = cacheKey(r.roomId, r.sessionId);
        // Only what was asked for (a store answering more must not fill memory).
        if (wanted.has(key) && this.#prefetched.get(key) === null) {
          this.#prefetched.set(key, r);
          found.push({ roomId: r.roomId, sessionId: r.sessionId });
        }
      }
    }
    return found;
  }

  #noteDamaged(key: string, roomId: string, sessionId: string): void {
    if (this.#damagedSeen.has(key) || this.#damagedSeen.size >= MAX_DAMAGED_INBOUND_SESSIONS) return;
    this.#damagedSeen.add(key);
    this.#damaged.push({ roomId, sessionId });
  }

  /**
   * Damaged records a bulk read left out (a backup batch, an export, a history bundle: a key that
   * can never be read is not backed up, exported or shared; the others are): reported with the
   * others, each once (see `#damagedSeen`).
   */
  noteDamaged(keys: readonly RoomSessionKey[]): void {
    for (const { roomId, sessionId } of keys)
      this.#noteDamaged(cacheKey(roomId, sessionId), roomId, sessionId);
  }

  /** Whether the stored record of this session was found damaged (see `#damagedSeen`). */
  isDamaged(roomId: string, sessionId: string): boolean {
    return this.#damagedSeen.has(cacheKey(roomId, sessionId));
  }

  /** The damaged records found since the last call (each once), for the sync result. */
  takeDamaged(): RoomSessionKey[] {
    const out = this.#damaged;
    this.#damaged = [];
    return out;
  }

  /** Forgets what `prefetch` read and the step did not use (the step ended, saved or not). */
  dropPrefetched(): void {
    if (this.#prefetched.size > 0) this.#prefetched = new Map();
  }

  #remember(key: string, entry: InboundEntry): void {
    this.#cache.set(key, entry);
    if (this.#cache.size > INBOUND_SESSION_CACHE_SIZE) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
  }

  /**
   * Adds a copy of a session, merged with the copy we hold (as mature SDKs merge them): a copy
   * whose ratchet is not connected to ours (a forgery under a known session ID) changes nothing;
   * otherwise we keep the lower first index of the two and the better-authenticated claim of who
   * created it (a direct `m.room_key` beats a forward or an import naming the same creator).
   * Returns the update when the stored copy improved, or a rival was held (events waiting on the
   * session are tried again).
   *
   * A direct share naming another creator than our copy (another direct share, a forward or an
   * import) means someone re-shared a key that is not theirs, or our copy's claim is wrong. We keep
   * our copy's claim and hold the share as a rival, saved with the step (a restart keeps it):
   * decryption promotes it if the session's events turn out to come from the rival's user before
   * any decrypted under our claim (`promoteRival`), since only the session's creator can sign its
   * messages. Rivals are deleted once the session settles (`dropRivals`).
   */
  async add(
    meta: SessionMeta,
    session: InboundGroupSession,
    options: {
      readonly transient?: boolean;
      /**
       * The copy comes from the backup we upload to, held there from this message index: a
       * record written here that starts there or later is written marked as backed up.
       */
      readonly backedUpFrom?: number;
    } = {},
  ): Promise<RoomKeyUpdate | undefined> {
    const key = cacheKey(meta.roomId, session.sessionId);
    // Only a session not in memory before is kept out of the cache.
    const transient = options.transient === true && !this.#cache.has(key);
    const { entry: existing, stored } = await this.#load(key, meta.roomId, session.sessionId);
    const { backedUpFrom } = options;
    if (existing === undefined) return this.#put(meta, session, !stored, transient, backedUpFrom, key);
    const merged = session.merge(existing.session);
    if (merged === null) return undefined;
    const old = existing.record;
    let chosen: SessionMeta = old;
    let rival = false;
    if (authentication(meta) > authentication(old) && meta.senderKey === old.senderKey) {
      chosen = meta;
    } else if (meta.senderKey !== old.senderKey && authentication(meta) === 1) {
      // A direct share naming another creator than our copy, even a forward or an import, does
      // not replace its claim: anyone holding the key (every member) can share it as theirs. It
      // waits as a rival, promoted if the session's events turn out to come from its sender.
      // Kept in the store with this step, so a restart before those events loses nothing.
      rival = true;
      const record: RivalRoomKeyRecord = {
        roomId: meta.roomId,
        sessionId: session.sessionId,
        senderKey: meta.senderKey,
        senderClaimedEd25519: meta.senderClaimedEd25519,
        pickle: session.toPickle(),
        ...(meta.sharedHistory === true ? { sharedHistory: true } : {}),
      };
      this.#keepRival(record);
      const tx = this.#ctx.tx;
      // Deleted earlier in this step (deletions are applied after upserts): held again.
      const id = rivalKey(record);
      if (tx.deletedRivalRoomKeys.length > 0) {
        tx.deletedRivalRoomKeys = tx.deletedRivalRoomKeys.filter((k) => rivalKey(k) !== id);
      }
      tx.rivalRoomKeys.push(record);
    }
    const improved =
      chosen !== old ||
      merged.firstKnownIndex < existing.session.firstKnownIndex ||
      merged.toPickle().signingKeyVerified !== old.pickle.signingKeyVerified;
    // A held rival changes no stored copy, but the events that failed `MISMATCHED_SENDER` for want
    // of it (they wait, see `PendingEvents`) can now promote it.
    if (!improved) return rival ? { roomId: meta.roomId, sessionId: session.sessionId } : undefined;
    const { roomId, senderKey, senderClaimedEd25519, forwarded, imported, forwardingChain } = chosen;
    // The flag goes with the claim we keep: a weaker copy cannot mark a session shareable.
    const shared = chosen.sharedHistory === true ? { sharedHistory: true } : {};
    return this.#put(
      { roomId, senderKey, senderClaimedEd25519, forwarded, imported, forwardingChain, ...shared },
      merged,
      false,
      transient,
      backedUpFrom,
      key,
    );
  }

  /** The step was saved: sessions an import brought in are read from the store from now on. */
  settle(): void {
    this.dropPrefetched();
    if (this.#unsaved.size === 0) return;
    // Those the step used were cached on the way (see #load): their records are kept instead,
    // as those of the others are, the newest last (the store holds the same now).
    for (const [key, unsaved] of this.#unsaved) {
      this.#cache.delete(key);
      this.#saved.delete(key);
      this.#saved.set(key, unsaved);
    }
    this.#unsaved = new Map();
    for (const key of this.#saved.keys()) {
      if (this.#saved.size <= SAVED_IMPORT_RECORDS) break;
      this.#saved.delete(key);
    }
  }

  /**
   * Whether the session is one an import saved (not live yet) that some store held before: the
   * store may hold replay records of it, for the caller to read ahead with the step's others.
   */
  savedNotNew(roomId: string, sessionId: string): boolean {
    return this.#saved.size > 0 && this.#saved.get(cacheKey(roomId, sessionId))?.createdHere === false;
  }

  /** A record of `#saved`, taken out of it (the caller caches the session or replaces the record). */
  #takeSaved(key: string): { record: InboundGroupSessionRecord; createdHere: boolean } | undefined {
    if (this.#saved.size === 0) return undefined;
    const saved = this.#saved.get(key);
    if (saved !== undefined) this.#saved.delete(key);
    return saved;
  }

  #put(
    meta: SessionMeta,
    session: InboundGroupSession,
    createdHere: boolean,
    transient = false,
    backedUpFrom?: number,
    key = cacheKey(meta.roomId, session.sessionId),
  ): RoomKeyUpdate {
    const pickle = session.toPickle();
    // Field by field rather than `{ ...meta, sessionId, ... }`: on Node 20 a literal that spreads
    // an object and then adds a field the object lacks costs ~0.8 µs against ~0.05 µs (a
    // micro-benchmark; overriding a field it has, or a trailing spread, stays fast), and an import
    // builds thousands a step; no copy, either, of whatever else the caller's object holds.
    const record: InboundGroupSessionRecord = {
      roomId: meta.roomId,
      sessionId: session.sessionId,
      senderKey: meta.senderKey,
      senderClaimedEd25519: meta.senderClaimedEd25519,
      firstKnownIndex: pickle.firstKnownIndex,
      pickle,
      imported: meta.imported,
      forwarded: meta.forwarded,
      forwardingChain: meta.forwardingChain,
      // A new or better copy of a session must reach the backup again, unless it is the backup's.
      backedUp: backedUpFrom !== undefined && pickle.firstKnownIndex >= backedUpFrom,
      ...(meta.sharedHistory === true ? { sharedHistory: true } : {}),
    };
    this.#saved.delete(key); // superseded by this record
    // Only a session no store ever held can have no replay records anywhere.
    if (transient) {
      this.#cache.delete(key); // the stored copy #load may have read; the step's record replaces it
      this.#unsaved.set(key, { record, createdHere });
    } else {
      this.#unsaved.delete(key);
      this.#remember(key, { record, session, createdHere });
    }
    this.#ctx.tx.inboundGroupSessions.push(record);
    return { roomId: meta.roomId, sessionId: session.sessionId };
  }

  /**
   * The session's events come from `ownsKey`'s user but our copy names another creator: if a
   * rival direct share came from a device of that user, it replaces our copy's claim. Once the
   * session is `settled` (an event decrypted under our copy's claim), none ever will: its rivals
   * are dropped, as they are once one is promoted.
   */
  async promoteRival(
    roomId: string,
    sessionId: string,
    check: {
      readonly settled: () => Promise<boolean>;
      readonly ownsKey: (senderKey: string, ed25519: string) => Promise<boolean>;
    },
  ): Promise<boolean> {
    const rivals = this.#rivalsOf(roomId, sessionId);
    if (rivals.length === 0) return false;
    if (await check.settled()) {
      this.dropRivals(roomId, sessionId);
      return false;
    }
    let rival: RivalRoomKeyRecord | undefined;
    for (const r of rivals) {
      if (await check.ownsKey(r.senderKey, r.senderClaimedEd25519)) {
        rival = r;
        break;
      }
    }
    if (rival === undefined) return false;
    let session: InboundGroupSession;
    try {
      session = InboundGroupSession.fromPickle(rival.pickle);
    } catch {
      return false; // a stored copy that does not unpickle: nothing to promote
    }
    const existing = await this.get(roomId, sessionId);
    const merged = existing === undefined ? session : session.merge(existing.session);
    if (merged === null) return false;
    this.dropRivals(roomId, sessionId);
    const { senderKey, senderClaimedEd25519 } = rival;
    const shared = rival.sharedHistory === true ? { sharedHistory: true } : {};
    const meta = {
      roomId,
      senderKey,
      senderClaimedEd25519,
      forwarded: false,
      imported: false,
      forwardingChain: [],
    };
    this.#put({ ...meta, ...shared }, merged, false);
    return true;
  }

  /**
   * Whether the session has rival copies (decryption asks for every event: a map lookup, none
   * while no rival is held).
   */
  hasRivals(roomId: string, sessionId: string): boolean {
    return this.#rivalCounts.size > 0 && this.#rivalCounts.has(cacheKey(roomId, sessionId));
  }

  /**
   * The session settled (a rival was promoted, or an event decrypted under our copy's claim, so
   * none ever will be): its rival copies are deleted, in memory and, with this step, in the store.
   */
  dropRivals(roomId: string, sessionId: string): void {
    const rivals = this.#rivalsOf(roomId, sessionId);
    if (rivals.length === 0) return;
    const tx = this.#ctx.tx;
    const session = cacheKey(roomId, sessionId);
    for (const r of rivals) {
      this.#rivals.delete(rivalKey(r));
      tx.deletedRivalRoomKeys.push({ roomId, sessionId, senderKey: r.senderKey });
    }
    this.#rivalCounts.delete(session);
    // Those this step added need not be written at all.
    if (tx.rivalRoomKeys.length > 0) {
      tx.rivalRoomKeys = tx.rivalRoomKeys.filter((r) => cacheKey(r.roomId, r.sessionId) !== session);
    }
  }

  /** The session's rival copies, first stored first. */
  #rivalsOf(roomId: string, sessionId: string): RivalRoomKeyRecord[] {
    if (!this.hasRivals(roomId, sessionId)) return [];
    const out: RivalRoomKeyRecord[] = [];
    for (const r of this.#rivals.values()) if (r.roomId === roomId && r.sessionId === sessionId) out.push(r);
    return out;
  }

  /**
   * Holds a rival copy (one per session and sending device: a later share from the same device
   * replaces the earlier one in its place), then bounds them as the store does: past
   * `MAX_RIVAL_ROOM_KEYS_PER_SESSION`, the session's oldest go; past `MAX_RIVAL_ROOM_KEYS`, the
   * oldest of all.
   */
  #keepRival(record: RivalRoomKeyRecord): void {
    const key = rivalKey(record);
    const session = cacheKey(record.roomId, record.sessionId);
    if (!this.#rivals.has(key)) this.#rivalCounts.set(session, (this.#rivalCounts.get(session) ?? 0) + 1);
    this.#rivals.set(key, record);
    let excess = (this.#rivalCounts.get(session) ?? 0) - MAX_RIVAL_ROOM_KEYS_PER_SESSION;
    for (const [k, r] of this.#rivals) {
      if (excess <= 0) break;
      if (r.roomId === record.roomId && r.sessionId === record.sessionId) {
        this.#forgetRival(k, r);
        excess--;
      }
    }
    for (const [k, r] of this.#rivals) {
      if (this.#rivals.size <= MAX_RIVAL_ROOM_KEYS) break;
      this.#forgetRival(k, r);
    }
  }

  /** Drops a rival from memory only (the store applies the same bounds on its own). */
  #forgetRival(key: string, r: RivalRoomKeyRecord): void {
    this.#rivals.delete(key);
    const session = cacheKey(r.roomId, r.sessionId);
    const left = (this.#rivalCounts.get(session) ?? 1) - 1;
    if (left > 0) this.#rivalCounts.set(session, left);
    else this.#rivalCounts.delete(session);
  }

  /** An `m.room_key` that arrived over Olm from the device owning `senderKey`. */
  async receiveRoomKey(
    content: Record<string, unknown>,
    senderKey: string,
    senderClaimedEd25519: string,
  ): Promise<RoomKeyUpdate | undefined> {
    const parsed = roomKeySchema.safeParse(content);
    if (!parsed.success) return undefined;
    let session: InboundGroupSession;
    try {
      session = InboundGroupSession.fromSessionKey(parsed.data.session_key);
    } catch (e) {
      if (e instanceof MegolmError) return undefined;
      throw e;
    }
    if (session.sessionId !== parsed.data.session_id) return undefined;
    return this.add(
      {
        roomId: parsed.data.room_id,
        senderKey,
        senderClaimedEd25519,
        forwarded: false,
        imported: false,
        forwardingChain: [],
        ...(readSharedHistory(content) === true ? { sharedHistory: true } : {}),
      },
      session,
    );
  }

  /**
   * `m.room_key.withheld`: remembered so decryption failures can say why. Decryption believes it
   * only for events of the notice's own sender (see `RoomEventDecryptor`); a notice for a session
   * we already hold, or naming a curve key that none of the sender's known devices has, is dropped.
   * An `m.no_olm` is about the sending device, not a session: it names none (the spec; the older
   * form naming one is taken too) and is remembered for the device (`noOlm`).
   */
  async receiveWithheld(
    sender: string,
    content: Record<string, unknown>,
    senderKey: string | undefined,
    senderOwnsKey: (senderKey: string) => Promise<boolean | undefined>,
  ): Promise<RoomKeyUpdate | undefined> {
    const parsed = withheldSchema.safeParse(content);
    if (!parsed.success || parsed.data.algorithm !== MEGOLM_ALGORITHM) return undefined;
    const { room_id: roomId, session_id: sessionId } = parsed.data;
    const key = senderKey ?? parsed.data.sender_key;
    if (parsed.data.code === NO_OLM_CODE && key !== undefined && (await senderOwnsKey(key)) !== false) {
      await this.noOlm.record(sender, key, parsed.data.reason);
    }
    if (roomId === undefined || sessionId === undefined) return undefined;
    if ((await this.get(roomId, sessionId)) !== undefined) return undefined;
    if (key !== undefined && (await senderOwnsKey(key)) === false) return undefined;
    const record: WithheldRecord = {
      roomId,
      sessionId,
      sender,
      senderKey: key,
      code: parsed.data.code,
      reason: parsed.data.reason,
    };
    this.#ctx.tx.withheld.push(record);
    return { roomId, sessionId };
  }
}
