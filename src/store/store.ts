/**
 * # The crypto store
 *
 * Everything the E2EE state machine must not forget: our Olm account, Olm and Megolm sessions,
 * other users' devices and trust, secrets, key requests, replay records and the sync token.
 *
 * The interface is deliberately small: async reads that each answer one question, and ONE write
 * path, `saveChanges`, which applies a whole `CryptoChanges` atomically (all of it or none of it).
 * The state machine collects what a step changed (including the sync token `nextBatch`) and saves
 * it in one call, so a crash at any moment leaves the store at the end of some complete step.
 *
 * Back ends: `MemoryCryptoStore` (tests), `SqliteCryptoStore` (Node default), and
 * `IndexedDbCryptoStore` (browsers). To write your own, implement this interface and run the shared
 * suite from `keyroom/store` (`runCryptoStoreConformance`) against it; see docs/stores.md.
 *
 * Contract every implementation keeps:
 * - reads return copies: mutating a returned record never changes the store;
 * - records are validated on the way in and on the way back (use `parse*` from `validate.ts`);
 * - `saveChanges` is all-or-nothing, and applies its parts in the order documented on `CryptoChanges`;
 * - the store is bound to one `{ userId, deviceId }` at creation (`StoreMismatchError` otherwise)
 *   and shared between processes through its lease (`StoreLease`; a write from a process whose view
 *   is old is refused with `StoreLockedError("STALE")`);
 * - pickles, the account, secrets, custom values and queued request bodies are encrypted at rest; IDs, public
 *   keys, trust and flags may stay in clear for lookups.
 */
import type { CryptoChanges } from "./changes.ts";
import type { JsonValue } from "./json.ts";
import type {
  AccountRecord,
  BackupStateRecord,
  CrossSigningIdentityRecord,
  DeviceRecord,
  InboundGroupSessionRecord,
  OlmSessionRecord,
  OutboundGroupSessionRecord,
  OutgoingKeyRequestRecord,
  QueuedRequestRecord,
  ReplayRecord,
  RivalRoomKeyRecord,
  RoomSessionKey,
  RoomSettingsRecord,
  StoreIdentity,
  TrackedUserRecord,
  WithheldRecord,
} from "./records.ts";

/**
 * Most sessions one `getInboundGroupSessions` call may ask for: a step's worth (an import step,
 * a sync response's timeline), so no back end holds an unbounded batch of records at once.
 */
export const MAX_INBOUND_SESSIONS_PER_LOOKUP = 10_000;

/**
 * Most users one `getDevicesOfUsers` call may ask for (a batch of events names at most this many
 * senders worth reading ahead).
 */
export const MAX_USERS_PER_DEVICE_LOOKUP = 1_000;

/**
 * Most `m.room_key.withheld` notices a store keeps. Notices come in the clear from anyone, each
 * naming a session of its own, so without a bound anyone could grow the store at will. A save
 * that takes the store past it deletes the notices stored longest ago (a notice saved again for
 * the same session keeps its place). A notice is stored only for a session whose key we lack; a
 * user refused keys for many sessions (rooms that share only with verified devices: a notice per
 * sender session, which rotates weekly or every 100 messages) holds a few thousand in years.
 * 50 000 is far above that, and at a few hundred bytes a notice costs at most ~20 MB.
 */
export const MAX_STORED_WITHHELD = 50_000;

/**
 * Most Olm message hashes a store keeps (`olmMessageHashes`: every Olm message decrypted, kept so
 * a pre-key message is refused again after its session was pruned, and a message delivered twice
 * is recognised as such rather than taken for a broken session). Anyone can start sessions on our
 * fallback key from made-up identity keys, each leaving a hash; a save that takes the store past
 * the bound deletes the hashes stored longest ago. Why that is safe: docs/security.md, "Known
 * limits". About 100 bytes a hash, ~10 MB at most.
 */
export const MAX_STORED_OLM_MESSAGE_HASHES = 100_000;

/**
 * Most rival room keys a store keeps (`rivalRoomKeys`: direct shares of a session we hold that
 * name another creator than our copy). Anyone in a room can send them, so a save that takes the
 * store past the bound deletes those stored longest ago. The engine reads them all when it opens
 * (`getRivalRoomKeys`): a few hundred bytes each, ~100 KB at most.
 */
export const MAX_STORED_RIVAL_ROOM_KEYS = 100;

/**
 * Most rival room keys a store keeps for one session (one per sending device): a save past it
 * deletes that session's rivals stored longest ago, so a flood of shares of one session from
 * made-up devices pushes out at most its own.
 */
export const MAX_RIVAL_ROOM_KEYS_PER_SESSION = 4;

export interface InboundGroupSessionCounts {
  readonly total: number;
  readonly backedUp: number;
}

/** Which page of `listInboundGroupSessions` to read. */
export interface InboundGroupSessionPage {
  /** Start after this session (the last one of the previous page); from the first when omitted. */
  readonly after?: RoomSessionKey;
  /** Most sessions to return: a positive integer (`StoreError("BAD_OPTION")` otherwise). */
  readonly limit: number;
}

/** How `getInboundGroupSessionsToBackUp` reads past damaged rows (given `unreadable`). */
export interface BackUpReadOptions {
  /**
   * Rows to pass over without opening them (the damaged rows a caller met before): neither
   * returned, named nor counted. Checked on each row's room and session ID.
   */
  readonly skip?: (roomId: string, sessionId: string) => boolean;
  /**
   * Stop once this many damaged rows were named in `unreadable` by this call: the batch may then
   * be shorter than `limit` with more rows after it (a positive integer; no bound when omitted).
   */
  readonly maxUnreadable?: number;
}

/** What taking the lease found. */
export interface LeaseGrant {
  /**
   * Another process (or store instance) wrote since this instance last held the lease, wrote or
   * opened: whatever the caller keeps in memory from this store is old and must be read again.
   * Another's hold that wrote nothing leaves it false.
   */
  readonly stale: boolean;
}

/**
 * Sharing one store between processes (and tabs), after matrix-rust-sdk's cross-process lock: a
 * process holds the store's lease only while it works on it (one sync response, one send), and a
 * generation counter in the store tells the next holder whether someone else wrote in between.
 *
 * - `tryAcquireLease` takes the lease if it is free, expired or already ours; it never waits (the
 *   client waits and retries: the store layer has no timers). Undefined: another holder has it.
 * - A lease expires `durationMs` after it was taken or renewed, so a killed process does not block
 *   the store; `renewLease` extends it (false: it was lost, another process took it).
 * - `saveChanges` is fenced: it throws `StoreLockedError("STALE")` (and saves nothing) when another
 *   instance wrote since this one last held the lease or wrote, or holds the lease now, whether or
 *   not this one holds the lease. A save outside the lease takes the store for that one transaction.
 *
 * Back ends that only one process can use (the memory store) always grant, never stale.
 */
export interface StoreLease {
  tryAcquireLease(durationMs: number): Promise<LeaseGrant | undefined>;
  /** Extends the lease this instance holds; false if it no longer holds it. */
  renewLease(durationMs: number): Promise<boolean>;
  releaseLease(): Promise<void>;
  /**
   * Calls `listener` when another context says it released the store after writing (IndexedDB, over a
   * BroadcastChannel), so idle holders of cached state can reload early. Returns the unsubscribe.
   */
  onChangedElsewhere(listener: () => void): () => void;
}

export interface CryptoStore extends StoreLease {
  /** The user and device this store belongs to (log in again with `deviceId` to reuse the device). */
  loadIdentity(): Promise<StoreIdentity>;
  loadAccount(): Promise<AccountRecord | undefined>;

  /**
   * Every Olm session with the device owning `senderKey` (Curve25519, base64), in no set order.
   * A record that fails authentication or is malformed throws (`TAMPERED`, `INVALID_RECORD`); with
   * `unreadable` given, it is left out instead and its session ID pushed there (the others are
   * still returned), so that one damaged record does not make the device's good ones unreadable.
   */
  getOlmSessions(senderKey: string, unreadable?: string[]): Promise<OlmSessionRecord[]>;

  getInboundGroupSession(roomId: string, sessionId: string): Promise<InboundGroupSessionRecord | undefined>;
  /**
   * The stored copies of many sessions at once (a timeline's events, an import step's keys): one
   * query where the back end can, instead of one `getInboundGroupSession` each. A record for each
   * of `keys` the store holds, in no set order; keys it does not hold, and repeats, add nothing.
   * At most `MAX_INBOUND_SESSIONS_PER_LOOKUP` keys a call (`StoreError("BAD_OPTION")` otherwise).
   */
  getInboundGroupSessions(keys: readonly RoomSessionKey[]): Promise<InboundGroupSessionRecord[]>;
  /**
   * All of a room's sessions. As for the bulk reads below: a record that fails authentication or
   * is malformed throws (`TAMPERED`, `INVALID_RECORD`); with `unreadable` given, it is left out
   * instead and its room and session ID pushed there, so that one damaged row does not make every
   * other session unreadable to the reader (backup, export, history bundles).
   */
  getInboundGroupSessionsForRoom(
    roomId: string,
    unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]>;
  countInboundGroupSessions(): Promise<InboundGroupSessionCounts>;
  /**
   * Every inbound session, a page at a time, ordered by room ID then session ID (each compared as
   * the back end orders strings). Pass the last record of a page as the next `after`; a page
   * shorter than `limit` is the last. Costs memory for one page only, however many sessions the
   * store holds; sessions added between pages may or may not be listed. With `unreadable`, damaged
   * rows are left out (named there) and do not count towards `limit`: the page reads on past them,
   * so its last record is still where the next page starts.
   */
  listInboundGroupSessions(
    page: InboundGroupSessionPage,
    unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]>;
  /**
   * Up to `limit` sessions not yet backed up, in a stable order (mark them with `changes.backedUp`).
   * With `unreadable`, damaged rows not backed up are left out (named there) and do not count
   * towards `limit`: the batch reads on past them, unless `options.maxUnreadable` of them were
   * named (then it may be short with more after), and passes over the rows `options.skip` names
   * unopened. Every later batch meets a damaged row again unless it is skipped (or marked).
   */
  getInboundGroupSessionsToBackUp(
    limit: number,
    unreadable?: RoomSessionKey[],
    options?: BackUpReadOptions,
  ): Promise<InboundGroupSessionRecord[]>;

  getOutboundGroupSession(roomId: string): Promise<OutboundGroupSessionRecord | undefined>;

  /** The user's devices, including those flagged `deleted`. */
  getUserDevices(userId: string): Promise<DeviceRecord[]>;
  /**
   * `getUserDevices` for many users at once (the senders of a batch of events about to be
   * decrypted): every device of each of `userIds`, deleted ones included, each user's in device ID order (as
   * `getUserDevices`), users in no set order. At
   * most `MAX_USERS_PER_DEVICE_LOOKUP` users a call (`StoreError("BAD_OPTION")` otherwise).
   */
  getDevicesOfUsers(userIds: readonly string[]): Promise<DeviceRecord[]>;
  /** The (non-deleted first) device whose Curve25519 identity key is `curve25519Key`. */
  getDeviceByCurve25519Key(curve25519Key: string): Promise<DeviceRecord | undefined>;
  getCrossSigningIdentity(userId: string): Promise<CrossSigningIdentityRecord | undefined>;

  /** A stored secret (own cross-signing private keys, backup key, ...; see `SECRET_NAMES`). */
  getSecret(name: string): Promise<string | undefined>;

  getTrackedUsers(): Promise<TrackedUserRecord[]>;

  getOutgoingKeyRequests(): Promise<OutgoingKeyRequestRecord[]>;

  /**
   * The notice stored for a session. At most `MAX_STORED_WITHHELD` are kept: saving a notice for
   * a new session past it deletes the one first stored longest ago.
   */
  getWithheld(roomId: string, sessionId: string): Promise<WithheldRecord | undefined>;
  getReplay(roomId: string, sessionId: string, messageIndex: number): Promise<ReplayRecord | undefined>;
  /** Up to `limit` replay records of one session, lowest message index first. */
  getReplays(roomId: string, sessionId: string, limit: number): Promise<ReplayRecord[]>;
  /**
   * `getReplays` for many sessions at once (the sessions of a batch of events about to be
   * decrypted): up to `limit` records of each of `sessions`, lowest message index first within a
   * session, sessions in no set order. At most `MAX_INBOUND_SESSIONS_PER_LOOKUP` sessions a call.
   */
  getReplaysOfSessions(sessions: readonly RoomSessionKey[], limit: number): Promise<ReplayRecord[]>;
  /**
   * Every rival room key (`changes.rivalRoomKeys`), first stored first. At most
   * `MAX_STORED_RIVAL_ROOM_KEYS`, and `MAX_RIVAL_ROOM_KEYS_PER_SESSION` of one session, are kept.
   */
  getRivalRoomKeys(): Promise<RivalRoomKeyRecord[]>;
  getRoomSettings(roomId: string): Promise<RoomSettingsRecord | undefined>;
  getBackupState(): Promise<BackupStateRecord | undefined>;
  /** Queued outgoing requests, oldest `createdAt` first (ties in request ID order). */
  getQueuedRequests(): Promise<QueuedRequestRecord[]>;
  /**
   * Whether an Olm message with this hash from this device was already decrypted. At most
   * `MAX_STORED_OLM_MESSAGE_HASHES` are kept, the first stored longest ago deleted first.
   */
  isOlmMessageKnown(senderKey: string, hash: string): Promise<boolean>;
  /** A value saved through `changes.customValues`. */
  getCustomValue(key: string): Promise<JsonValue | undefined>;
  /** The sync token of the last saved step. */
  getNextBatch(): Promise<string | undefined>;

  /** Applies every change in one transaction, or none of them (then it throws). */
  saveChanges(changes: CryptoChanges): Promise<void>;

  /** Releases the lock and the back end's resources. Later calls throw `StoreError("CLOSED")`. */
  close(): Promise<void>;
}
