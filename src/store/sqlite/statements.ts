/**
 * Prepared statements and row conversions for the SQLite store. Secret columns (`pickle`,
 * `secrets.value`, the account, queued request bodies) hold `StoreCipher` ciphertexts bound to
 * their row; everything else is clear JSON or plain columns. Every row read back is validated.
 */
import type { Database, Statement } from "better-sqlite3";
import type { CryptoChanges } from "../changes.ts";
import { accountAd, openAccount, rowAd, type StoreCipher } from "../cipher/store-cipher.ts";
import { isDamagedRecord, readUnlessDamaged, StoreError } from "../errors.ts";
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
  RivalRoomKeyRecord,
  RoomSessionKey,
  RoomSettingsRecord,
  StoreIdentity,
  TrackedUserRecord,
  WithheldRecord,
} from "../records.ts";
import {
  type BackUpReadOptions,
  type InboundGroupSessionCounts,
  MAX_RIVAL_ROOM_KEYS_PER_SESSION,
  MAX_STORED_OLM_MESSAGE_HASHES,
  MAX_STORED_RIVAL_ROOM_KEYS,
  MAX_STORED_WITHHELD,
} from "../store.ts";
import {
  accountToJson,
  checkMaxUnreadable,
  mergeOutboundSharing,
  onlyRatchet,
  outboundNotStored,
  parseAccount,
  parseBackupState,
  parseCrossSigningIdentity,
  parseCustomKey,
  parseCustomValue,
  parseDevice,
  parseInboundGroupSession,
  parseNextBatch,
  parseOlmMessageHash,
  parseOlmSession,
  parseOutboundGroupSession,
  parseOutboundGroupSessionUpdate,
  parseOutboundSharing,
  parseOutgoingKeyRequest,
  parseQueuedRequest,
  parseReplay,
  parseRivalRoomKey,
  parseRivalRoomKeyId,
  parseRoomSettings,
  parseSecret,
  parseSecretName,
  parseTrackedUser,
  parseWithheld,
} from "../validate.ts";

type Row = { readonly [column: string]: unknown };

export function parseJson(text: unknown, what: string): unknown {
  if (typeof text !== "string") throw new StoreError("INVALID_RECORD", `${what}: not stored as text`);
  try {
    return JSON.parse(text);
  } catch {
    throw new StoreError("INVALID_RECORD", `${what}: malformed JSON`);
  }
}

const flag = (v: unknown): boolean => v === 1;

const SQL = {
  meta: "SELECT value FROM meta WHERE key = ?",
  setMeta: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
  delMeta: "DELETE FROM meta WHERE key = ?",
  olmBySender: "SELECT * FROM olm_sessions WHERE sender_key = ?",
  putOlm:
    "INSERT OR REPLACE INTO olm_sessions (sender_key, session_id, created_at, last_used_at, pickle) VALUES (?, ?, ?, ?, ?)",
  delOlm: "DELETE FROM olm_sessions WHERE sender_key = ? AND session_id = ?",
  inbound: "SELECT * FROM inbound_group_sessions WHERE room_id = ? AND session_id = ?",
  inboundForRoom: "SELECT * FROM inbound_group_sessions WHERE room_id = ? ORDER BY session_id",
  // Many sessions in one statement: the keys come as one JSON array of [room ID, session ID]
  // pairs (no limit on bound parameters), each looked up through the primary key. Read as arrays
  // (`BATCH_READS`), a row naming its key by position in the array instead of repeating its IDs.
  inboundMany:
    "SELECT k.key, s.sender_key, s.sender_claimed_ed25519, s.first_known_index, s.imported, s.forwarded, " +
    "s.forwarding_chain, s.backed_up, s.pickle, s.shared_history " +
    "FROM json_each(?) AS k CROSS JOIN inbound_group_sessions AS s " +
    "ON s.room_id = k.value ->> 0 AND s.session_id = k.value ->> 1",
  inboundCounts:
    "SELECT COUNT(*) AS total, COALESCE(SUM(backed_up), 0) AS backed_up FROM inbound_group_sessions",
  inboundFirstPage: "SELECT * FROM inbound_group_sessions ORDER BY room_id, session_id LIMIT ?",
  // A row-value comparison walks the primary key from the cursor: each page costs O(log n + limit).
  inboundPageAfter:
    "SELECT * FROM inbound_group_sessions WHERE (room_id, session_id) > (?, ?) ORDER BY room_id, session_id LIMIT ?",
  // Row order: the partial index's order (migration 6), so no sort and no scan of backed-up rows.
  inboundToBackUp:
    "SELECT rowid AS row_order, * FROM inbound_group_sessions WHERE backed_up = 0 ORDER BY rowid LIMIT ?",
  // Reading on past damaged rows (see `inboundToBackUp` below): the same order, from a row on.
  inboundToBackUpAfter:
    "SELECT rowid AS row_order, * FROM inbound_group_sessions WHERE backed_up = 0 AND rowid > ? ORDER BY rowid LIMIT ?",
  putInbound:
    "INSERT OR REPLACE INTO inbound_group_sessions (room_id, session_id, sender_key, sender_claimed_ed25519, " +
    "first_known_index, imported, forwarded, forwarding_chain, backed_up, pickle, shared_history) " +
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  resetBackedUp: "UPDATE inbound_group_sessions SET backed_up = 0 WHERE backed_up = 1",
  markBackedUp: "UPDATE inbound_group_sessions SET backed_up = 1 WHERE room_id = ? AND session_id = ?",
  outbound:
    "SELECT o.*, s.sharing FROM outbound_group_sessions o " +
    "LEFT JOIN outbound_group_session_sharing s ON s.room_id = o.room_id WHERE o.room_id = ?",
  putOutbound:
    "INSERT OR REPLACE INTO outbound_group_sessions " +
    "(room_id, session_id, created_at, message_count, pickle, shared_history) VALUES (?, ?, ?, ?, ?, ?)",
  updateOutbound:
    "UPDATE outbound_group_sessions SET message_count = ?, pickle = ? WHERE room_id = ? AND session_id = ?",
  outboundSharing: "SELECT sharing FROM outbound_group_session_sharing WHERE room_id = ?",
  putOutboundSharing:
    "INSERT OR REPLACE INTO outbound_group_session_sharing (room_id, sharing) VALUES (?, ?)",
  delOutbound: "DELETE FROM outbound_group_sessions WHERE room_id = ?",
  delOutboundSharing: "DELETE FROM outbound_group_session_sharing WHERE room_id = ?",
  userDevices: "SELECT * FROM devices WHERE user_id = ? ORDER BY device_id",
  // Many users in one statement, the IDs as one JSON array (see inboundMany).
  devicesOfUsers:
    "SELECT d.* FROM json_each(?) AS k CROSS JOIN devices AS d ON d.user_id = k.value ORDER BY d.user_id, d.device_id",
  deviceByCurve:
    "SELECT * FROM devices WHERE curve25519_key = ? ORDER BY deleted, user_id, device_id LIMIT 1",
  putDevice:
    "INSERT OR REPLACE INTO devices (user_id, device_id, curve25519_key, ed25519_key, trust, deleted, keys) " +
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
  crossSigning: "SELECT identity FROM cross_signing_identities WHERE user_id = ?",
  putCrossSigning: "INSERT OR REPLACE INTO cross_signing_identities (user_id, identity) VALUES (?, ?)",
  secret: "SELECT value FROM secrets WHERE name = ?",
  putSecret: "INSERT OR REPLACE INTO secrets (name, value) VALUES (?, ?)",
  delSecret: "DELETE FROM secrets WHERE name = ?",
  tracked: "SELECT * FROM tracked_users ORDER BY user_id",
  putTracked: "INSERT OR REPLACE INTO tracked_users (user_id, outdated, sender_order) VALUES (?, ?, ?)",
  delTracked: "DELETE FROM tracked_users WHERE user_id = ?",
  keyRequests: "SELECT record FROM outgoing_key_requests ORDER BY request_id",
  putKeyRequest:
    "INSERT OR REPLACE INTO outgoing_key_requests (request_id, room_id, session_id, record) VALUES (?, ?, ?, ?)",
  delKeyRequest: "DELETE FROM outgoing_key_requests WHERE request_id = ?",
  withheld: "SELECT record FROM withheld WHERE room_id = ? AND session_id = ?",
  // A notice saved again keeps its row (and place); see migration 7 for why `seq` has no gaps.
  putWithheld:
    "INSERT INTO withheld (room_id, session_id, record) VALUES (?, ?, ?) " +
    "ON CONFLICT (room_id, session_id) DO UPDATE SET record = excluded.record",
  // The newest `?` rows stay: a range delete from the low end of the row IDs, O(rows deleted).
  evictWithheld: "DELETE FROM withheld WHERE seq <= (SELECT max(seq) FROM withheld) - ?",
  rivals: "SELECT * FROM rival_room_keys ORDER BY seq",
  // A rival saved again keeps its row (and place).
  putRival:
    "INSERT INTO rival_room_keys (room_id, session_id, sender_key, sender_claimed_ed25519, shared_history, pickle) " +
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, session_id, sender_key) DO UPDATE SET " +
    "sender_claimed_ed25519 = excluded.sender_claimed_ed25519, shared_history = excluded.shared_history, " +
    "pickle = excluded.pickle",
  // The session's newest `?` rows stay (through the UNIQUE index's prefix: a session's few rows).
  evictRivalsOfSession:
    "DELETE FROM rival_room_keys WHERE room_id = ? AND session_id = ? AND seq NOT IN " +
    "(SELECT seq FROM rival_room_keys WHERE room_id = ? AND session_id = ? ORDER BY seq DESC LIMIT ?)",
  // The newest `?` rows stay (the table holds about that many: the bound is small).
  evictRivals:
    "DELETE FROM rival_room_keys WHERE seq NOT IN (SELECT seq FROM rival_room_keys ORDER BY seq DESC LIMIT ?)",
  delRival: "DELETE FROM rival_room_keys WHERE room_id = ? AND session_id = ? AND sender_key = ?",
  // The room and session are the caller's: only the other columns come back.
  replay:
    "SELECT message_index, event_id, timestamp FROM replays WHERE room_id = ? AND session_id = ? AND message_index = ?",
  replaysOfSession:
    "SELECT message_index, event_id, timestamp FROM replays WHERE room_id = ? AND session_id = ? " +
    "ORDER BY message_index LIMIT ?",
  // Up to `limit` records of each listed session in one statement (the first parameter is
  // limit - 1): `last` is each session's limit-th message index (NULL when it holds fewer), looked
  // up once per session (MATERIALIZED), then each session's range is read through the primary key.
  replaysOfSessions:
    "WITH k AS MATERIALIZED (SELECT key AS at, value ->> 0 AS room_id, value ->> 1 AS session_id, " +
    "(SELECT l.message_index FROM replays AS l WHERE l.room_id = value ->> 0 AND l.session_id = value ->> 1 " +
    "ORDER BY l.message_index LIMIT 1 OFFSET ?) AS last FROM json_each(?)) " +
    "SELECT k.at, r.message_index, r.event_id, r.timestamp FROM k CROSS JOIN replays AS r " +
    "ON r.room_id = k.room_id AND r.session_id = k.session_id AND (k.last IS NULL OR r.message_index <= k.last) " +
    "ORDER BY k.at, r.message_index",
  putReplay:
    "INSERT OR REPLACE INTO replays (room_id, session_id, message_index, event_id, timestamp) VALUES (?, ?, ?, ?, ?)",
  olmHash: "SELECT 1 AS known FROM olm_message_hashes WHERE sender_key = ? AND hash = ?",
  putOlmHash: "INSERT OR IGNORE INTO olm_message_hashes (sender_key, hash) VALUES (?, ?)",
  evictOlmHashes: "DELETE FROM olm_message_hashes WHERE seq <= (SELECT max(seq) FROM olm_message_hashes) - ?",
  custom: "SELECT value FROM custom_values WHERE key = ?",
  putCustom: "INSERT OR REPLACE INTO custom_values (key, value) VALUES (?, ?)",
  delCustom: "DELETE FROM custom_values WHERE key = ?",
  roomSettings: "SELECT settings FROM room_settings WHERE room_id = ?",
  putRoomSettings: "INSERT OR REPLACE INTO room_settings (room_id, settings) VALUES (?, ?)",
  queued: "SELECT * FROM queued_requests ORDER BY created_at, request_id",
  putQueued:
    "INSERT OR REPLACE INTO queued_requests (request_id, kind, created_at, body) VALUES (?, ?, ?, ?)",
  delQueued: "DELETE FROM queued_requests WHERE request_id = ?",
} as const;

type StatementName = keyof typeof SQL;

/**
 * Statements of the batched reads, whose rows come back as arrays: building an object per row
 * (property by property, in better-sqlite3) cost ~1 µs a session row, and the IDs each row would
 * repeat are the caller's already (two strings fewer a row).
 */
const BATCH_READS: ReadonlySet<StatementName> = new Set(["inboundMany", "replaysOfSessions"]);

export class SqliteStatements {
  #cipher: StoreCipher | undefined;
  #identity: StoreIdentity | undefined;
  readonly #q: Readonly<Record<StatementName, Statement>>;

  constructor(db: Database) {
    const q: Partial<Record<StatementName, Statement>> = {};
    for (const [name, sql] of Object.entries(SQL)) {
      const statement = db.prepare(sql);
      q[name as StatementName] = BATCH_READS.has(name as StatementName) ? statement.raw(true) : statement;
    }
    this.#q = q as Record<StatementName, Statement>;
  }

  /** Unlocks the store for `identity` (the one its account is bound to). */
  setCipher(cipher: StoreCipher, identity: StoreIdentity): void {
    this.#cipher = cipher;
    this.#identity = identity;
  }

  #c(): StoreCipher {
    if (this.#cipher === undefined) throw new StoreError("CLOSED", "the store is not unlocked");
    return this.#cipher;
  }

  #id(): StoreIdentity {
    if (this.#identity === undefined) throw new StoreError("CLOSED", "the store is not unlocked");
    return this.#identity;
  }

  #get(name: StatementName, ...params: readonly (string | number)[]): Row | undefined {
    return this.#q[name].get(...params) as Row | undefined;
  }

  #all(name: StatementName, ...params: readonly (string | number)[]): Row[] {
    return this.#q[name].all(...params) as Row[];
  }

  /** Runs a write; returns how many rows it changed. */
  #run(name: StatementName, ...params: readonly (string | number | null)[]): number {
    return this.#q[name].run(...params).changes;
  }

  meta(key: string): string | undefined {
    const v = this.#get("meta", key)?.value;
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw new StoreError("INVALID_RECORD", `meta ${key}: not text`);
    return v;
  }

  setMeta(key: string, value: string): void {
    this.#run("setMeta", key, value);
  }

  account(): AccountRecord | undefined {
    const v = this.meta("account");
    return v === undefined ? undefined : parseAccount(openAccount(this.#c(), v, this.#id()));
  }

  #olm(r: Row): OlmSessionRecord {
    const senderKey = r.sender_key as string;
    const sessionId = r.session_id as string;
    return parseOlmSession({
      senderKey,
      sessionId,
      createdAt: r.created_at,
      lastUsedAt: r.last_used_at,
      pickle: this.#c().decrypt(r.pickle, rowAd("olm", senderKey, sessionId)),
    });
  }

  olmSessions(senderKey: string, unreadable?: string[]): OlmSessionRecord[] {
    const out: OlmSessionRecord[] = [];
    for (const r of this.#all("olmBySender", senderKey)) {
      try {
        out.push(this.#olm(r));
      } catch (e) {
        if (unreadable === undefined || !isDamagedRecord(e)) throw e;
        unreadable.push(String(r.session_id));
      }
    }
    return out;
  }

  #inbound(r: Row): InboundGroupSessionRecord {
    return this.#inboundOf(r.room_id as string, r.session_id as string, r);
  }

  #inboundOf(roomId: string, sessionId: string, r: Row): InboundGroupSessionRecord {
    return parseInboundGroupSession({
      roomId,
      sessionId,
      senderKey: r.sender_key,
      senderClaimedEd25519: r.sender_claimed_ed25519,
      firstKnownIndex: r.first_known_index,
      imported: flag(r.imported),
      forwarded: flag(r.forwarded),
      forwardingChain: parseJson(r.forwarding_chain, "forwarding chain"),
      backedUp: flag(r.backed_up),
      sharedHistory: flag(r.shared_history),
      pickle: this.#c().decrypt(r.pickle, rowAd("inbound", roomId, sessionId)),
    });
  }

  inbound(roomId: string, sessionId: string): InboundGroupSessionRecord | undefined {
    const r = this.#get("inbound", roomId, sessionId);
    return r && this.#inbound(r);
  }

  /** The stored ones of `keys` (each once), looked up in key order so the index is walked forwards. */
  inboundMany(keys: readonly RoomSessionKey[]): InboundGroupSessionRecord[] {
    const pairs = uniqueSortedPairs(keys);
    if (pairs.length === 0) return [];
    const rows = this.#q.inboundMany.all(JSON.stringify(pairs)) as unknown[][];
    return rows.map((r) => {
      const [roomId, sessionId] = pairAt(pairs, r[0]);
      return this.#inboundOf(roomId, sessionId, {
        sender_key: r[1],
        sender_claimed_ed25519: r[2],
        first_known_index: r[3],
        imported: r[4],
        forwarded: r[5],
        forwarding_chain: r[6],
        backed_up: r[7],
        pickle: r[8],
        shared_history: r[9],
      });
    });
  }

  /** `#inbound`, or undefined with the row's IDs pushed to `unreadable` when it is damaged (given). */
  #inboundUnlessDamaged(
    r: Row,
    unreadable: RoomSessionKey[] | undefined,
  ): InboundGroupSessionRecord | undefined {
    return readUnlessDamaged(
      () => this.#inbound(r),
      () => ({ roomId: String(r.room_id), sessionId: String(r.session_id) }),
      unreadable,
    );
  }

  /**
   * Up to `limit` readable records from `read(after, n)` (rows after a row, in the query's order),
   * damaged rows pushed to `unreadable` and read past (see `CryptoStore.listInboundGroupSessions`).
   */
  #readPastDamaged<C>(
    limit: number,
    read: (after: C | undefined, n: number) => Row[],
    position: (r: Row) => C,
    unreadable: RoomSessionKey[] | undefined,
    options: BackUpReadOptions = {},
  ): InboundGroupSessionRecord[] {
    const { skip, maxUnreadable } = options;
    const out: InboundGroupSessionRecord[] = [];
    const named = unreadable?.length ?? 0;
    let after: C | undefined;
    for (;;) {
      const wanted = limit - out.length;
      const rows = read(after, wanted);
      for (const r of rows) {
        if (skip?.(String(r.room_id), String(r.session_id)) === true) continue;
        const record = this.#inboundUnlessDamaged(r, unreadable);
        if (record !== undefined) out.push(record);
        else if (maxUnreadable !== undefined && (unreadable?.length ?? 0) - named >= maxUnreadable)
          return out;
      }
      const last = rows[rows.length - 1];
      // Short of `limit` only through damaged rows, and more rows may follow them.
      if (out.length === limit || rows.length < wanted || last === undefined) return out;
      after = position(last);
    }
  }

  inboundForRoom(roomId: string, unreadable?: RoomSessionKey[]): InboundGroupSessionRecord[] {
    const out: InboundGroupSessionRecord[] = [];
    for (const r of this.#all("inboundForRoom", roomId)) {
      const record = this.#inboundUnlessDamaged(r, unreadable);
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  inboundCounts(): InboundGroupSessionCounts {
    const r = this.#get("inboundCounts");
    return { total: Number(r?.total ?? 0), backedUp: Number(r?.backed_up ?? 0) };
  }

  inboundPage(
    from: RoomSessionKey | undefined,
    limit: number,
    unreadable?: RoomSessionKey[],
  ): InboundGroupSessionRecord[] {
    return this.#readPastDamaged<RoomSessionKey>(
      limit,
      (page, n) => {
        const after = page ?? from;
        return after === undefined
          ? this.#all("inboundFirstPage", n)
          : this.#all("inboundPageAfter", after.roomId, after.sessionId, n);
      },
      (r) => ({ roomId: String(r.room_id), sessionId: String(r.session_id) }),
      unreadable,
    );
  }

  inboundToBackUp(
    limit: number,
    unreadable?: RoomSessionKey[],
    options?: BackUpReadOptions,
  ): InboundGroupSessionRecord[] {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new StoreError("BAD_OPTION", "the batch limit must be a positive integer");
    }
    checkMaxUnreadable(options);
    return this.#readPastDamaged<number>(
      limit,
      (after, n) =>
        after === undefined ? this.#all("inboundToBackUp", n) : this.#all("inboundToBackUpAfter", after, n),
      (r) => Number(r.row_order),
      unreadable,
      options,
    );
  }

  outbound(roomId: string): OutboundGroupSessionRecord | undefined {
    const r = this.#get("outbound", roomId);
    if (r === undefined) return undefined;
    return parseOutboundGroupSession({
      ...parseOutboundSharing(parseJson(r.sharing, "outbound sharing")),
      roomId,
      sessionId: r.session_id,
      createdAt: r.created_at,
      messageCount: r.message_count,
      sharedHistory: flag(r.shared_history),
      pickle: this.#c().decrypt(r.pickle, rowAd("outbound", roomId)),
    });
  }

  #device(r: Row): DeviceRecord {
    return parseDevice({
      userId: r.user_id,
      deviceId: r.device_id,
      curve25519Key: r.curve25519_key,
      ed25519Key: r.ed25519_key,
      trust: r.trust,
      deleted: flag(r.deleted),
      keys: parseJson(r.keys, "device keys"),
    });
  }

  userDevices(userId: string): DeviceRecord[] {
    return this.#all("userDevices", userId).map((r) => this.#device(r));
  }

  /** Every device of each of `userIds` (each user once, looked up in key order). */
  devicesOfUsers(userIds: readonly string[]): DeviceRecord[] {
    const unique = [...new Set(userIds)].sort();
    if (unique.length === 0) return [];
    return this.#all("devicesOfUsers", JSON.stringify(unique)).map((r) => this.#device(r));
  }

  deviceByCurve(key: string): DeviceRecord | undefined {
    const r = this.#get("deviceByCurve", key);
    return r && this.#device(r);
  }

  crossSigning(userId: string): CrossSigningIdentityRecord | undefined {
    const r = this.#get("crossSigning", userId);
    return (
      r && parseCrossSigningIdentity({ userId, identity: parseJson(r.identity, "cross-signing identity") })
    );
  }

  secret(name: string): string | undefined {
    const r = this.#get("secret", name);
    return r && parseSecret(name, this.#c().decrypt(r.value, rowAd("secret", name)));
  }

  trackedUsers(): TrackedUserRecord[] {
    return this.#all("tracked").map((r) =>
      parseTrackedUser({ userId: r.user_id, outdated: flag(r.outdated), senderOrder: r.sender_order }),
    );
  }

  keyRequests(): OutgoingKeyRequestRecord[] {
    return this.#all("keyRequests").map((r) => parseOutgoingKeyRequest(parseJson(r.record, "key request")));
  }

  withheld(roomId: string, sessionId: string): WithheldRecord | undefined {
    const r = this.#get("withheld", roomId, sessionId);
    return r && parseWithheld(parseJson(r.record, "withheld notice"));
  }

  rivals(): RivalRoomKeyRecord[] {
    return this.#all("rivals").map((r) => {
      const roomId = r.room_id as string;
      const sessionId = r.session_id as string;
      const senderKey = r.sender_key as string;
      return parseRivalRoomKey({
        roomId,
        sessionId,
        senderKey,
        senderClaimedEd25519: r.sender_claimed_ed25519,
        sharedHistory: flag(r.shared_history),
        pickle: this.#c().decrypt(r.pickle, rowAd("rival", roomId, sessionId, senderKey)),
      });
    });
  }

  olmMessageKnown(senderKey: string, hash: string): boolean {
    return this.#get("olmHash", senderKey, hash) !== undefined;
  }

  customValue(key: string): JsonValue | undefined {
    const r = this.#get("custom", key);
    return r && parseCustomValue(key, this.#c().decrypt(r.value, rowAd("custom", key)));
  }

  replay(roomId: string, sessionId: string, messageIndex: number): ReplayRecord | undefined {
    const r = this.#get("replay", roomId, sessionId, messageIndex);
    return r && replayOf(roomId, sessionId, r);
  }

  replays(roomId: string, sessionId: string, limit: number): ReplayRecord[] {
    return this.#all("replaysOfSession", roomId, sessionId, limit).map((r) => replayOf(roomId, sessionId, r));
  }

  /**
   * `replays` for each session, in one synchronous call: each session's own LIMIT keeps the work
   * bounded however many records one session has (a single statement over all sessions would
   * have to number every record of every session before cutting).
   */
  /** One statement for all of `sessions` (one per session cost ~5 µs more each, mostly SQLite's per-call work). */
  replaysOfSessions(sessions: readonly RoomSessionKey[], limit: number): ReplayRecord[] {
    const pairs = uniqueSortedPairs(sessions);
    if (pairs.length === 0) return [];
    const rows = this.#q.replaysOfSessions.all(limit - 1, JSON.stringify(pairs)) as unknown[][];
    return rows.map((r) => {
      const [roomId, sessionId] = pairAt(pairs, r[0]);
      return parseReplay({ roomId, sessionId, messageIndex: r[1], eventId: r[2], timestamp: r[3] });
    });
  }

  roomSettings(roomId: string): RoomSettingsRecord | undefined {
    const r = this.#get("roomSettings", roomId);
    return r && parseRoomSettings(parseJson(r.settings, "room settings"));
  }

  backupState(): BackupStateRecord | undefined {
    const v = this.meta("backup_state");
    return v === undefined ? undefined : parseBackupState(parseJson(v, "backup state"));
  }

  queuedRequests(): QueuedRequestRecord[] {
    return this.#all("queued").map((r) => {
      const requestId = r.request_id as string;
      return parseQueuedRequest({
        requestId,
        kind: r.kind,
        createdAt: r.created_at,
        body: this.#c().decrypt(r.body, rowAd("queued", requestId)),
      });
    });
  }

  /** Writes `c` in the order documented on `CryptoChanges`; the caller runs this in a transaction. */
  apply(c: CryptoChanges): void {
    const cipher = this.#c();
    if (c.resetBackedUp === true) this.#run("resetBackedUp");
    if (c.account !== undefined) {
      const a = parseAccount(c.account);
      this.setMeta("account", cipher.encrypt(accountToJson(a), accountAd(this.#id())));
    }
    for (const x of c.olmSessions ?? []) {
      const r = parseOlmSession(x);
      const pickle = cipher.encrypt(r.pickle, rowAd("olm", r.senderKey, r.sessionId));
      this.#run("putOlm", r.senderKey, r.sessionId, r.createdAt, r.lastUsedAt, pickle);
    }
    // Sealed together: one cipher set-up for a step's rows (an import step writes thousands).
    // Written in key order (a stable sort: a later copy of the same session still wins): session
    // IDs are random, and inserting them in order walks the primary key's B-tree forwards instead
    // of landing on pages all over it (5 000 rows: ~9.4 -> ~7.8 µs of SQLite CPU a row).
    const inbound = (c.inboundGroupSessions ?? []).map(parseInboundGroupSession).sort(byRoomAndSession);
    const pickles = cipher.encryptMany(
      inbound.map((r) => ({ value: r.pickle, ad: rowAd("inbound", r.roomId, r.sessionId) })),
    );
    // The statement called directly, not through #run's rest parameters (one array a row less).
    const putInbound = this.#q.putInbound;
    for (let i = 0; i < inbound.length; i++) {
      const r = inbound[i] as InboundGroupSessionRecord;
      putInbound.run(
        r.roomId,
        r.sessionId,
        r.senderKey,
        r.senderClaimedEd25519,
        r.firstKnownIndex,
        r.imported ? 1 : 0,
        r.forwarded ? 1 : 0,
        r.forwardingChain.length === 0 ? "[]" : JSON.stringify(r.forwardingChain),
        r.backedUp ? 1 : 0,
        pickles[i] as string,
        r.sharedHistory === true ? 1 : 0,
      );
    }
    for (const x of c.outboundGroupSessions ?? []) {
      const r = parseOutboundGroupSession(x);
      const sharing = JSON.stringify({
        sharedWith: r.sharedWith,
        pendingShares: r.pendingShares,
        withheldFrom: r.withheldFrom,
      });
      const pickle = cipher.encrypt(r.pickle, rowAd("outbound", r.roomId));
      const shared = r.sharedHistory === true ? 1 : 0;
      this.#run("putOutbound", r.roomId, r.sessionId, r.createdAt, r.messageCount, pickle, shared);
      this.#run("putOutboundSharing", r.roomId, sharing);
    }
    for (const x of c.outboundGroupSessionUpdates ?? []) {
      const u = parseOutboundGroupSessionUpdate(x);
      const pickle = cipher.encrypt(u.pickle, rowAd("outbound", u.roomId));
      // The ratchet row only: the device lists live in their own table and stay untouched.
      if (this.#run("updateOutbound", u.messageCount, pickle, u.roomId, u.sessionId) !== 1) {
        throw outboundNotStored(u.roomId);
      }
      if (onlyRatchet(u)) continue;
      const row = this.#get("outboundSharing", u.roomId);
      const old = parseOutboundSharing(parseJson(row?.sharing, "outbound sharing"));
      this.#run("putOutboundSharing", u.roomId, JSON.stringify({ ...old, ...mergeOutboundSharing(old, u) }));
    }
    for (const x of c.devices ?? []) {
      const r = parseDevice(x);
      const keys = JSON.stringify(r.keys);
      this.#run(
        "putDevice",
        r.userId,
        r.deviceId,
        r.curve25519Key,
        r.ed25519Key,
        r.trust,
        r.deleted ? 1 : 0,
        keys,
      );
    }
    for (const x of c.crossSigningIdentities ?? []) {
      const r = parseCrossSigningIdentity(x);
      this.#run("putCrossSigning", r.userId, JSON.stringify(r.identity));
    }
    for (const [name, value] of Object.entries(c.secrets ?? {})) {
      if (value === null) this.#run("delSecret", parseSecretName(name));
      else this.#run("putSecret", name, cipher.encrypt(parseSecret(name, value), rowAd("secret", name)));
    }
    for (const x of c.trackedUsers ?? []) {
      const r = parseTrackedUser(x);
      this.#run("putTracked", r.userId, r.outdated ? 1 : 0, r.senderOrder ?? null);
    }
    for (const x of c.outgoingKeyRequests ?? []) {
      const r = parseOutgoingKeyRequest(x);
      this.#run("putKeyRequest", r.requestId, r.roomId, r.sessionId, JSON.stringify(r));
    }
    for (const x of c.withheld ?? []) {
      const r = parseWithheld(x);
      this.#run("putWithheld", r.roomId, r.sessionId, JSON.stringify(r));
    }
    if (c.withheld !== undefined && c.withheld.length > 0) this.#run("evictWithheld", MAX_STORED_WITHHELD);
    const sessions = new Map<string, RoomSessionKey>();
    for (const x of c.rivalRoomKeys ?? []) {
      const r = parseRivalRoomKey(x);
      const pickle = cipher.encrypt(r.pickle, rowAd("rival", r.roomId, r.sessionId, r.senderKey));
      const shared = r.sharedHistory === true ? 1 : 0;
      this.#run("putRival", r.roomId, r.sessionId, r.senderKey, r.senderClaimedEd25519, shared, pickle);
      sessions.set(JSON.stringify([r.roomId, r.sessionId]), r);
    }
    for (const { roomId, sessionId } of sessions.values()) {
      this.#run(
        "evictRivalsOfSession",
        roomId,
        sessionId,
        roomId,
        sessionId,
        MAX_RIVAL_ROOM_KEYS_PER_SESSION,
      );
    }
    if (sessions.size > 0) this.#run("evictRivals", MAX_STORED_RIVAL_ROOM_KEYS);
    for (const x of c.replays ?? []) {
      const r = parseReplay(x);
      this.#run("putReplay", r.roomId, r.sessionId, r.messageIndex, r.eventId, r.timestamp);
    }
    for (const x of c.roomSettings ?? []) {
      const r = parseRoomSettings(x);
      this.#run("putRoomSettings", r.roomId, JSON.stringify(r));
    }
    if (c.backupState === null) this.#run("delMeta", "backup_state");
    else if (c.backupState !== undefined)
      this.setMeta("backup_state", JSON.stringify(parseBackupState(c.backupState)));
    for (const x of c.queuedRequests ?? []) {
      const r = parseQueuedRequest(x);
      this.#run(
        "putQueued",
        r.requestId,
        r.kind,
        r.createdAt,
        cipher.encrypt(r.body, rowAd("queued", r.requestId)),
      );
    }
    for (const x of c.olmMessageHashes ?? []) {
      const r = parseOlmMessageHash(x);
      this.#run("putOlmHash", r.senderKey, r.hash);
    }
    if (c.olmMessageHashes !== undefined && c.olmMessageHashes.length > 0) {
      this.#run("evictOlmHashes", MAX_STORED_OLM_MESSAGE_HASHES);
    }
    for (const [key, value] of Object.entries(c.customValues ?? {})) {
      if (value === null) this.#run("delCustom", parseCustomKey(key));
      else
        this.#run(
          "putCustom",
          key,
          cipher.encrypt(parseCustomValue(parseCustomKey(key), value), rowAd("custom", key)),
        );
    }
    for (const { roomId, sessionId } of c.backedUp ?? []) this.#run("markBackedUp", roomId, sessionId);
    for (const { senderKey, sessionId } of c.deletedOlmSessions ?? [])
      this.#run("delOlm", senderKey, sessionId);
    for (const roomId of c.deletedOutboundGroupSessions ?? []) {
      this.#run("delOutbound", roomId);
      this.#run("delOutboundSharing", roomId);
    }
    for (const x of c.deletedRivalRoomKeys ?? []) {
      const k = parseRivalRoomKeyId(x);
      this.#run("delRival", k.roomId, k.sessionId, k.senderKey);
    }
    for (const userId of c.untrackedUsers ?? []) this.#run("delTracked", userId);
    for (const id of c.deletedOutgoingKeyRequests ?? []) this.#run("delKeyRequest", id);
    for (const id of c.deletedQueuedRequests ?? []) this.#run("delQueued", id);
    if (c.nextBatch !== undefined) this.setMeta("next_batch", parseNextBatch(c.nextBatch));
  }
}

/** Key order of the inbound sessions' primary key (room ID, session ID), as SQLite's BINARY collation sorts ASCII IDs. */
function byRoomAndSession(a: InboundGroupSessionRecord, b: InboundGroupSessionRecord): number {
  if (a.roomId !== b.roomId) return a.roomId < b.roomId ? -1 : 1;
  return a.sessionId === b.sessionId ? 0 : a.sessionId < b.sessionId ? -1 : 1;
}

/** Each session once, as [room ID, session ID] pairs in key order (so an index is walked forwards). */
function uniqueSortedPairs(keys: readonly RoomSessionKey[]): (readonly [string, string])[] {
  const unique = new Map<string, readonly [string, string]>();
  for (const { roomId, sessionId } of keys) unique.set(`${roomId}\u0000${sessionId}`, [roomId, sessionId]);
  return [...unique.values()].sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
}

/** The key a batched read's row names by its position in the JSON array of keys it was given. */
function pairAt(pairs: readonly (readonly [string, string])[], at: unknown): readonly [string, string] {
  const pair = typeof at === "number" ? pairs[at] : undefined;
  if (pair === undefined)
    throw new StoreError("INVALID_RECORD", "a batched read returned a key it was not given");
  return pair;
}

function replayOf(roomId: string, sessionId: string, r: Row): ReplayRecord {
  return parseReplay({
    roomId,
    sessionId,
    messageIndex: r.message_index,
    eventId: r.event_id,
    timestamp: r.timestamp,
  });
}
