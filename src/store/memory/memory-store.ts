/**
 * A `CryptoStore` in memory, for tests and short-lived tools. Records are validated and copied
 * in and out, so nothing the caller holds aliases the store. `saveChanges` keeps an undo journal
 * and rolls back if any change fails, so it is atomic like the persistent back ends.
 *
 * Keep a `MemoryStoreData` and open it again to simulate a restart: identity checks and the
 * one-open-at-a-time lock behave as they do on disk. Nothing is encrypted (nothing is at rest).
 */
import type { CryptoChanges } from "../changes.ts";
import { StoreError, StoreLockedError } from "../errors.ts";
import { type IdentityRequest, resolveIdentity } from "../identity.ts";
import type { JsonValue } from "../json.ts";
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
  RivalRoomKeyId,
  RivalRoomKeyRecord,
  RoomSessionKey,
  RoomSettingsRecord,
  StoreIdentity,
  TrackedUserRecord,
  WithheldRecord,
} from "../records.ts";
import {
  type BackUpReadOptions,
  type CryptoStore,
  type InboundGroupSessionCounts,
  type InboundGroupSessionPage,
  type LeaseGrant,
  MAX_RIVAL_ROOM_KEYS_PER_SESSION,
  MAX_STORED_OLM_MESSAGE_HASHES,
  MAX_STORED_RIVAL_ROOM_KEYS,
  MAX_STORED_WITHHELD,
} from "../store.ts";
import {
  checkMaxUnreadable,
  mergeOutboundSharing,
  outboundNotStored,
  parseAccount,
  parseBackupState,
  parseCrossSigningIdentity,
  parseCustomKey,
  parseCustomValue,
  parseDevice,
  parseInboundGroupSession,
  parseLimit,
  parseNextBatch,
  parseOlmMessageHash,
  parseOlmSession,
  parseOutboundGroupSession,
  parseOutboundGroupSessionUpdate,
  parseOutgoingKeyRequest,
  parsePageRequest,
  parseQueuedRequest,
  parseReplay,
  parseRivalRoomKey,
  parseRivalRoomKeyId,
  parseRoomSettings,
  parseSecret,
  parseSecretName,
  parseSessionKeys,
  parseTrackedUser,
  parseUserIds,
  parseWithheld,
} from "../validate.ts";

const k2 = (a: string, b: string): string => JSON.stringify([a, b]);
// Replay records come by the thousand while a timeline decrypts: a cheaper key than JSON, still
// unambiguous (the room ID's length prefixes it). Records are held per session, by message index.
const replaySessionKey = (roomId: string, sessionId: string): string =>
  `${roomId.length}:${roomId}${sessionId}`;
const rivalKey = (k: RivalRoomKeyId): string => JSON.stringify([k.roomId, k.sessionId, k.senderKey]);
const clone = <T>(v: T): T => structuredClone(v);
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareKeys = (a: RoomSessionKey, b: RoomSessionKey): number =>
  compare(a.roomId, b.roomId) || compare(a.sessionId, b.sessionId);

/** The contents of a memory store; outlives the `MemoryCryptoStore` handles opened on it. */
export class MemoryStoreData {
  identity: StoreIdentity | undefined;
  inUse = false;
  account: AccountRecord | undefined;
  readonly olm = new Map<string, Map<string, OlmSessionRecord>>();
  readonly inbound = new Map<string, InboundGroupSessionRecord>();
  /** `inbound`'s sessions in listing order; built on demand, dropped when a session is added. */
  inboundOrder: readonly RoomSessionKey[] | undefined;
  readonly outbound = new Map<string, OutboundGroupSessionRecord>();
  readonly devices = new Map<string, Map<string, DeviceRecord>>();
  readonly crossSigning = new Map<string, CrossSigningIdentityRecord>();
  readonly secrets = new Map<string, string>();
  readonly tracked = new Map<string, TrackedUserRecord>();
  readonly keyRequests = new Map<string, OutgoingKeyRequestRecord>();
  readonly withheld = new Map<string, WithheldRecord>();
  /** Rival room keys by room, session and sender key, first stored first. */
  readonly rivals = new Map<string, RivalRoomKeyRecord>();
  readonly replays = new Map<string, Map<number, ReplayRecord>>();
  readonly roomSettings = new Map<string, RoomSettingsRecord>();
  backup: BackupStateRecord | undefined;
  readonly queued = new Map<string, QueuedRequestRecord>();
  readonly olmHashes = new Set<string>();
  readonly custom = new Map<string, JsonValue>();
  nextBatch: string | undefined;
}

export interface MemoryCryptoStoreOptions extends IdentityRequest {
  /** Existing contents to reopen; a fresh store when omitted. */
  readonly data?: MemoryStoreData;
}

type Undo = () => void;

/** Sets `key` in `map`, journaling how to undo it. */
function put<K, V>(journal: Undo[], map: Map<K, V>, key: K, value: V): void {
  const had = map.has(key);
  const old = map.get(key);
  map.set(key, value);
  journal.push(had ? () => map.set(key, old as V) : () => map.delete(key));
}

function del<K, V>(journal: Undo[], map: Map<K, V>, key: K): void {
  if (!map.has(key)) return;
  const old = map.get(key) as V;
  map.delete(key);
  journal.push(() => map.set(key, old));
}

/**
 * Deletes the first-inserted entries of `entries` beyond `max` (a Map or Set keeps insertion
 * order, and setting an existing key keeps its place: the store's "oldest stored first" order).
 * O(entries deleted); the undo puts them back in front, rebuilding the collection (rollback only).
 */
function evictOldest<K, V>(journal: Undo[], entries: Map<K, V> | Set<K>, max: number): void {
  if (entries.size <= max) return;
  const evicted: [K, V | undefined][] = [];
  for (const key of entries.keys()) {
    if (entries.size - evicted.length <= max) break;
    evicted.push([key, entries instanceof Map ? entries.get(key) : undefined]);
  }
  for (const [key] of evicted) entries.delete(key);
  journal.push(() => {
    if (entries instanceof Map) {
      const rest = [...entries];
      entries.clear();
      for (const [key, value] of [...evicted, ...rest]) entries.set(key, value as V);
    } else {
      const rest = [...entries];
      entries.clear();
      for (const [key] of evicted) entries.add(key);
      for (const key of rest) entries.add(key);
    }
  });
}

function nested<V>(journal: Undo[], outer: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let inner = outer.get(key);
  if (inner === undefined) {
    inner = new Map();
    put(journal, outer, key, inner);
  }
  return inner;
}

export class MemoryCryptoStore implements CryptoStore {
  readonly #data: MemoryStoreData;
  #closed = false;

  private constructor(data: MemoryStoreData) {
    this.#data = data;
  }

  static async open(options: MemoryCryptoStoreOptions): Promise<MemoryCryptoStore> {
    const data = options.data ?? new MemoryStoreData();
    if (data.inUse) throw new StoreLockedError("memory store");
    data.identity = resolveIdentity(data.identity, options);
    data.inUse = true;
    return new MemoryCryptoStore(data);
  }

  #d(): MemoryStoreData {
    if (this.#closed) throw new StoreError("CLOSED", "this crypto store is closed");
    return this.#data;
  }

  async loadIdentity(): Promise<StoreIdentity> {
    return clone(this.#d().identity as StoreIdentity);
  }

  async loadAccount(): Promise<AccountRecord | undefined> {
    return clone(this.#d().account);
  }

  /** Records in memory are never damaged: `unreadable` stays empty. */
  async getOlmSessions(senderKey: string, _unreadable?: string[]): Promise<OlmSessionRecord[]> {
    return [...(this.#d().olm.get(senderKey)?.values() ?? [])].map(clone);
  }

  async getInboundGroupSession(
    roomId: string,
    sessionId: string,
  ): Promise<InboundGroupSessionRecord | undefined> {
    return clone(this.#d().inbound.get(k2(roomId, sessionId)));
  }

  async getInboundGroupSessions(keys: readonly RoomSessionKey[]): Promise<InboundGroupSessionRecord[]> {
    const inbound = this.#d().inbound;
    const seen = new Set<string>();
    const out: InboundGroupSessionRecord[] = [];
    for (const { roomId, sessionId } of parseSessionKeys(keys)) {
      const key = k2(roomId, sessionId);
      if (seen.has(key)) continue;
      seen.add(key);
      const r = inbound.get(key);
      if (r !== undefined) out.push(clone(r));
    }
    return out;
  }

  /** Never damaged in memory (as `getOlmSessions`): `unreadable` stays empty. */
  async getInboundGroupSessionsForRoom(
    roomId: string,
    _unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]> {
    return [...this.#d().inbound.values()]
      .filter((r) => r.roomId === roomId)
      .sort((a, b) => compare(a.sessionId, b.sessionId))
      .map(clone);
  }

  async countInboundGroupSessions(): Promise<InboundGroupSessionCounts> {
    let backedUp = 0;
    for (const r of this.#d().inbound.values()) if (r.backedUp) backedUp++;
    return { total: this.#data.inbound.size, backedUp };
  }

  async listInboundGroupSessions(
    page: InboundGroupSessionPage,
    _unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]> {
    const { after, limit } = parsePageRequest(page);
    const d = this.#d();
    // Sorted once and reused by every page until a session is added: paging through n sessions
    // costs O(n log n) in all, not per page.
    d.inboundOrder ??= [...d.inbound.values()]
      .map((r) => ({ roomId: r.roomId, sessionId: r.sessionId }))
      .sort(compareKeys);
    const order = d.inboundOrder;
    let lo = 0;
    if (after !== undefined) {
      let hi = order.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareKeys(order[mid] as RoomSessionKey, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
    }
    const out: InboundGroupSessionRecord[] = [];
    for (let i = lo; i < order.length && out.length < limit; i++) {
      const key = order[i] as RoomSessionKey;
      const r = d.inbound.get(k2(key.roomId, key.sessionId));
      if (r !== undefined) out.push(clone(r));
    }
    return out;
  }

  async getInboundGroupSessionsToBackUp(
    limit: number,
    _unreadable?: RoomSessionKey[],
    options?: BackUpReadOptions,
  ): Promise<InboundGroupSessionRecord[]> {
    checkLimit(limit);
    checkMaxUnreadable(options);
    const skip = options?.skip;
    // Same order as the persistent back ends: by room ID, then session ID. (No row is ever damaged.)
    return [...this.#d().inbound.values()]
      .filter((r) => !r.backedUp && skip?.(r.roomId, r.sessionId) !== true)
      .sort((a, b) => compare(a.roomId, b.roomId) || compare(a.sessionId, b.sessionId))
      .slice(0, limit)
      .map(clone);
  }

  async getOutboundGroupSession(roomId: string): Promise<OutboundGroupSessionRecord | undefined> {
    return clone(this.#d().outbound.get(roomId));
  }

  async getUserDevices(userId: string): Promise<DeviceRecord[]> {
    return [...(this.#d().devices.get(userId)?.values() ?? [])]
      .sort((a, b) => compare(a.deviceId, b.deviceId))
      .map(clone);
  }

  async getDevicesOfUsers(userIds: readonly string[]): Promise<DeviceRecord[]> {
    const devices = this.#d().devices;
    const out: DeviceRecord[] = [];
    for (const userId of new Set(parseUserIds(userIds))) {
      const own = [...(devices.get(userId)?.values() ?? [])].sort((a, b) => compare(a.deviceId, b.deviceId));
      for (const d of own) out.push(clone(d));
    }
    return out;
  }

  async getDeviceByCurve25519Key(curve25519Key: string): Promise<DeviceRecord | undefined> {
    let deleted: DeviceRecord | undefined;
    for (const devices of this.#d().devices.values()) {
      for (const d of devices.values()) {
        if (d.curve25519Key !== curve25519Key) continue;
        if (!d.deleted) return clone(d);
        deleted ??= d;
      }
    }
    return clone(deleted);
  }

  async getCrossSigningIdentity(userId: string): Promise<CrossSigningIdentityRecord | undefined> {
    return clone(this.#d().crossSigning.get(userId));
  }

  async getSecret(name: string): Promise<string | undefined> {
    return this.#d().secrets.get(name);
  }

  async getTrackedUsers(): Promise<TrackedUserRecord[]> {
    return [...this.#d().tracked.values()].sort((a, b) => compare(a.userId, b.userId)).map(clone);
  }

  async getOutgoingKeyRequests(): Promise<OutgoingKeyRequestRecord[]> {
    return [...this.#d().keyRequests.values()].sort((a, b) => compare(a.requestId, b.requestId)).map(clone);
  }

  async getRivalRoomKeys(): Promise<RivalRoomKeyRecord[]> {
    return clone([...this.#d().rivals.values()]);
  }

  async getWithheld(roomId: string, sessionId: string): Promise<WithheldRecord | undefined> {
    return clone(this.#d().withheld.get(k2(roomId, sessionId)));
  }

  async isOlmMessageKnown(senderKey: string, hash: string): Promise<boolean> {
    return this.#d().olmHashes.has(k2(senderKey, hash));
  }

  async getCustomValue(key: string): Promise<JsonValue | undefined> {
    return clone(this.#d().custom.get(key));
  }

  async getReplay(
    roomId: string,
    sessionId: string,
    messageIndex: number,
  ): Promise<ReplayRecord | undefined> {
    const r = this.#d().replays.get(replaySessionKey(roomId, sessionId))?.get(messageIndex);
    return r === undefined ? undefined : { ...r }; // flat record: a spread is a full copy
  }

  async getReplays(roomId: string, sessionId: string, limit: number): Promise<ReplayRecord[]> {
    const records = this.#d().replays.get(replaySessionKey(roomId, sessionId));
    if (records === undefined) return [];
    const indexes = [...records.keys()].sort((a, b) => a - b).slice(0, Math.max(0, limit));
    return indexes.map((i) => ({ ...(records.get(i) as ReplayRecord) }));
  }

  async getReplaysOfSessions(sessions: readonly RoomSessionKey[], limit: number): Promise<ReplayRecord[]> {
    const keys = parseSessionKeys(sessions);
    const max = parseLimit(limit);
    const seen = new Set<string>();
    const out: ReplayRecord[] = [];
    for (const { roomId, sessionId } of keys) {
      const key = replaySessionKey(roomId, sessionId);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(...(await this.getReplays(roomId, sessionId, max)));
    }
    return out;
  }

  async getRoomSettings(roomId: string): Promise<RoomSettingsRecord | undefined> {
    return clone(this.#d().roomSettings.get(roomId));
  }

  async getBackupState(): Promise<BackupStateRecord | undefined> {
    return clone(this.#d().backup);
  }

  async getQueuedRequests(): Promise<QueuedRequestRecord[]> {
    return [...this.#d().queued.values()]
      .sort((a, b) => a.createdAt - b.createdAt || compare(a.requestId, b.requestId))
      .map(clone);
  }

  async getNextBatch(): Promise<string | undefined> {
    return this.#d().nextBatch;
  }

  async saveChanges(changes: CryptoChanges): Promise<void> {
    const d = this.#d();
    const journal: Undo[] = [];
    try {
      apply(d, changes, journal);
    } catch (e) {
      for (let i = journal.length - 1; i >= 0; i--) journal[i]?.();
      throw e;
    }
  }

  // One process, one open instance (`inUse`): the lease is always ours and nothing is ever stale.
  async tryAcquireLease(_durationMs: number): Promise<LeaseGrant | undefined> {
    this.#d();
    return { stale: false };
  }

  async renewLease(_durationMs: number): Promise<boolean> {
    return !this.#closed;
  }

  async releaseLease(): Promise<void> {}

  onChangedElsewhere(_listener: () => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#data.inUse = false;
  }
}

/**
 * Upserts rival room keys (a rival saved again keeps its place), then applies both bounds, then
 * deletes `deleted`. The undo puts the whole collection back as it was, order included (a hundred
 * or so rivals at most: copying them is cheap).
 */
function applyRivals(
  d: MemoryStoreData,
  records: readonly RivalRoomKeyRecord[],
  deleted: readonly RivalRoomKeyId[],
  j: Undo[],
): void {
  if (records.length === 0 && deleted.length === 0) return;
  const parsed = records.map((r) => clone(parseRivalRoomKey(r)));
  const gone = deleted.map(parseRivalRoomKeyId);
  const before = [...d.rivals];
  j.push(() => {
    d.rivals.clear();
    for (const [key, r] of before) d.rivals.set(key, r);
  });
  const sessions = new Set<string>();
  for (const rec of parsed) {
    sessions.add(k2(rec.roomId, rec.sessionId));
    d.rivals.set(rivalKey(rec), rec);
  }
  // Per session: its rivals in stored order, the oldest beyond the bound deleted.
  const bySession = new Map<string, string[]>();
  for (const [key, r] of d.rivals) {
    const session = k2(r.roomId, r.sessionId);
    if (!sessions.has(session)) continue;
    const keys = bySession.get(session) ?? [];
    keys.push(key);
    bySession.set(session, keys);
  }
  for (const keys of bySession.values()) {
    for (const key of keys.slice(0, Math.max(0, keys.length - MAX_RIVAL_ROOM_KEYS_PER_SESSION))) {
      d.rivals.delete(key);
    }
  }
  for (const key of d.rivals.keys()) {
    if (d.rivals.size <= MAX_STORED_RIVAL_ROOM_KEYS) break;
    d.rivals.delete(key);
  }
  for (const k of gone) d.rivals.delete(rivalKey(k));
}

export function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError("BAD_OPTION", "the batch limit must be a positive integer");
  }
}

function apply(d: MemoryStoreData, c: CryptoChanges, j: Undo[]): void {
  if (c.resetBackedUp === true) {
    for (const [key, r] of d.inbound) if (r.backedUp) put(j, d.inbound, key, { ...r, backedUp: false });
  }
  if (c.account !== undefined) {
    const old = d.account;
    d.account = clone(parseAccount(c.account));
    j.push(() => {
      d.account = old;
    });
  }
  for (const r of c.olmSessions ?? []) {
    const rec = clone(parseOlmSession(r));
    put(j, nested(j, d.olm, rec.senderKey), rec.sessionId, rec);
  }
  for (const r of c.inboundGroupSessions ?? []) {
    const rec = clone(parseInboundGroupSession(r));
    const key = k2(rec.roomId, rec.sessionId);
    // A new session changes the listing order (rebuilt on demand, also after a rollback).
    if (!d.inbound.has(key)) d.inboundOrder = undefined;
    put(j, d.inbound, key, rec);
  }
  for (const r of c.outboundGroupSessions ?? []) {
    const rec = clone(parseOutboundGroupSession(r));
    put(j, d.outbound, rec.roomId, rec);
  }
  for (const x of c.outboundGroupSessionUpdates ?? []) {
    const u = parseOutboundGroupSessionUpdate(x);
    const old = d.outbound.get(u.roomId);
    if (old === undefined || old.sessionId !== u.sessionId) throw outboundNotStored(u.roomId);
    // Stored records are never mutated, so the unchanged device lists are shared, not copied.
    put(j, d.outbound, u.roomId, {
      ...old,
      ...mergeOutboundSharing(old, u),
      pickle: clone(u.pickle),
      messageCount: u.messageCount,
    });
  }
  for (const r of c.devices ?? []) {
    const rec = clone(parseDevice(r));
    put(j, nested(j, d.devices, rec.userId), rec.deviceId, rec);
  }
  for (const r of c.crossSigningIdentities ?? []) {
    const rec = clone(parseCrossSigningIdentity(r));
    put(j, d.crossSigning, rec.userId, rec);
  }
  for (const [name, value] of Object.entries(c.secrets ?? {})) {
    if (value === null) del(j, d.secrets, parseSecretName(name));
    else put(j, d.secrets, name, parseSecret(name, value));
  }
  for (const r of c.trackedUsers ?? []) {
    const rec = parseTrackedUser(r);
    put(j, d.tracked, rec.userId, rec);
  }
  for (const r of c.outgoingKeyRequests ?? []) {
    const rec = clone(parseOutgoingKeyRequest(r));
    put(j, d.keyRequests, rec.requestId, rec);
  }
  for (const r of c.withheld ?? []) {
    const rec = parseWithheld(r);
    put(j, d.withheld, k2(rec.roomId, rec.sessionId), rec);
  }
  evictOldest(j, d.withheld, MAX_STORED_WITHHELD);
  if (c.replays !== undefined && c.replays.length > 0) {
    // One undo entry for the whole batch (they arrive 256 at a time), not one per record.
    const added = c.replays.map((r) => {
      const rec = parseReplay(r);
      const key = replaySessionKey(rec.roomId, rec.sessionId);
      let records = d.replays.get(key);
      if (records === undefined) {
        records = new Map();
        d.replays.set(key, records);
      }
      return [records, rec] as const;
    });
    const previous = added.map(([records, rec]) => [records.get(rec.messageIndex), rec] as const);
    for (const [records, rec] of added) records.set(rec.messageIndex, rec);
    j.push(() => {
      for (let i = added.length - 1; i >= 0; i--) {
        const [records, rec] = added[i]!;
        const old = previous[i]![0];
        if (old === undefined) records.delete(rec.messageIndex);
        else records.set(rec.messageIndex, old);
      }
    });
  }
  for (const r of c.roomSettings ?? []) {
    const rec = parseRoomSettings(r);
    put(j, d.roomSettings, rec.roomId, rec);
  }
  if (c.backupState !== undefined) {
    const old = d.backup;
    d.backup = c.backupState === null ? undefined : clone(parseBackupState(c.backupState));
    j.push(() => {
      d.backup = old;
    });
  }
  for (const r of c.queuedRequests ?? []) {
    const rec = clone(parseQueuedRequest(r));
    put(j, d.queued, rec.requestId, rec);
  }
  for (const r of c.olmMessageHashes ?? []) {
    const rec = parseOlmMessageHash(r);
    const key = k2(rec.senderKey, rec.hash);
    if (!d.olmHashes.has(key)) {
      d.olmHashes.add(key);
      j.push(() => d.olmHashes.delete(key));
    }
  }
  evictOldest(j, d.olmHashes, MAX_STORED_OLM_MESSAGE_HASHES);
  for (const [key, value] of Object.entries(c.customValues ?? {})) {
    if (value === null) del(j, d.custom, parseCustomKey(key));
    else put(j, d.custom, parseCustomKey(key), clone(parseCustomValue(key, value)));
  }
  for (const { roomId, sessionId } of c.backedUp ?? []) {
    const key = k2(roomId, sessionId);
    const r = d.inbound.get(key);
    if (r !== undefined && !r.backedUp) put(j, d.inbound, key, { ...r, backedUp: true });
  }
  for (const { senderKey, sessionId } of c.deletedOlmSessions ?? []) {
    const inner = d.olm.get(senderKey);
    if (inner !== undefined) del(j, inner, sessionId);
  }
  for (const roomId of c.deletedOutboundGroupSessions ?? []) del(j, d.outbound, roomId);
  // Rivals touch no other record: their upserts, bounds and deletions together, in that order.
  applyRivals(d, c.rivalRoomKeys ?? [], c.deletedRivalRoomKeys ?? [], j);
  for (const userId of c.untrackedUsers ?? []) del(j, d.tracked, userId);
  for (const requestId of c.deletedOutgoingKeyRequests ?? []) del(j, d.keyRequests, requestId);
  for (const requestId of c.deletedQueuedRequests ?? []) del(j, d.queued, requestId);
  if (c.nextBatch !== undefined) {
    const old = d.nextBatch;
    d.nextBatch = parseNextBatch(c.nextBatch);
    j.push(() => {
      d.nextBatch = old;
    });
  }
}
