/**
 * Runtime checks for every record, used on the way into a store and on the way back out of a
 * back end (a database file is outside our control). Each parser returns a fresh object with only
 * the known fields, or throws `StoreError("INVALID_RECORD")`.
 */
import type { InboundGroupSessionPickle, OutboundGroupSessionPickle } from "../crypto/megolm/index.ts";
import type { AccountPickle, SessionPickle } from "../crypto/olm/index.ts";
import type { DeviceKeys } from "../wire/keys.ts";
import type { Sealable } from "./cipher/store-cipher.ts";
import { StoreError } from "./errors.ts";
import { asJsonObject, type JsonObject, type JsonValue } from "./json.ts";
import {
  type AccountRecord,
  type BackupStateRecord,
  type CrossSigningIdentityRecord,
  DEVICE_TRUST_STATES,
  type DeviceRecord,
  type DeviceTrust,
  type InboundGroupSessionRecord,
  KEY_REQUEST_STATES,
  type KeyRequestRecipient,
  type KeyRequestState,
  type OlmMessageHashRecord,
  type OlmSessionRecord,
  type OutboundGroupSessionRecord,
  type OutboundGroupSessionUpdate,
  type OutgoingKeyRequestRecord,
  type Pickle,
  type QueuedRequestRecord,
  type ReplayRecord,
  type RivalRoomKeyId,
  type RivalRoomKeyRecord,
  type RoomSessionKey,
  type RoomSettingsRecord,
  SENDER_REQUIREMENT_VALUES,
  SHARE_WITH_VALUES,
  type SharedWith,
  type StoreIdentity,
  type TrackedUserRecord,
  type WithheldRecord,
} from "./records.ts";
import {
  type BackUpReadOptions,
  MAX_INBOUND_SESSIONS_PER_LOOKUP,
  MAX_USERS_PER_DEVICE_LOOKUP,
} from "./store.ts";

/** Longest ID or key string accepted in a record (Matrix IDs are at most 255 bytes). */
export const MAX_STORED_ID_LENGTH = 4096;
/** Most entries in a forwarding chain or a key request's recipient list. */
export const MAX_STORED_LIST_LENGTH = 10_000;

type Obj = { readonly [key: string]: unknown };

function fail(what: string, why: string): StoreError {
  return new StoreError("INVALID_RECORD", `${what}: ${why}`);
}

function obj(v: unknown, what: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw fail(what, "not an object");
  return v as Obj;
}

function str(o: Obj, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== "string") throw fail(what, `${key} is not a string`);
  if (v.length > MAX_STORED_ID_LENGTH) throw fail(what, `${key} is too long`);
  // A lone surrogate does not survive every back end as it is (SQLite stores U+FFFD): a string
  // that could read back different from what was written (and authenticated) is refused.
  if (!v.isWellFormed()) throw fail(what, `${key} is not well-formed Unicode`);
  return v;
}

function id(o: Obj, key: string, what: string): string {
  const v = str(o, key, what);
  if (v.length === 0) throw fail(what, `${key} is empty`);
  return v;
}

function optStr(o: Obj, key: string, what: string): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : str(o, key, what);
}

function int(o: Obj, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw fail(what, `${key} is not a non-negative integer`);
  }
  return v;
}

function optInt(o: Obj, key: string, what: string): number | undefined {
  return o[key] === undefined || o[key] === null ? undefined : int(o, key, what);
}

function bool(o: Obj, key: string, what: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw fail(what, `${key} is not a boolean`);
  return v;
}

function optBool(o: Obj, key: string, what: string): boolean | undefined {
  return o[key] === undefined || o[key] === null ? undefined : bool(o, key, what);
}

function json(o: Obj, key: string, what: string): JsonObject {
  return asJsonObject(o[key], `${what}: ${key}`);
}

/**
 * A pickle: a plain JSON object here. Its fields are the crypto layer's to check (`fromPickle`
 * does, whenever the machine loads one), so its type is granted here, where it comes back from
 * storage, and nowhere else.
 */
function pickle<T extends Pickle>(o: Obj, what: string): T {
  return json(o, "pickle", what) as unknown as T;
}

function strList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length > MAX_STORED_LIST_LENGTH) throw fail(what, "not a list of strings");
  return v.map((s) => {
    if (typeof s !== "string" || s.length > MAX_STORED_ID_LENGTH || !s.isWellFormed()) {
      throw fail(what, "not a list of well-formed strings");
    }
    return s;
  });
}

function oneOf<T extends string>(o: Obj, key: string, allowed: readonly T[], what: string): T {
  const v = o[key];
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v))
    throw fail(what, `${key} is unknown`);
  return v as T;
}

/** Copies optional fields only when present, so records compare equal whichever back end returns them. */
function withOptional<T extends object>(base: T, optional: { [key: string]: unknown }): T {
  const out: { [key: string]: unknown } = { ...(base as { [key: string]: unknown }) };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) out[k] = v;
  return out as T;
}

export function parseIdentity(v: unknown): StoreIdentity {
  const o = obj(v, "store identity");
  return { userId: id(o, "userId", "store identity"), deviceId: id(o, "deviceId", "store identity") };
}

export function parseAccount(v: unknown): AccountRecord {
  const w = "account";
  const o = obj(v, w);
  return withOptional<AccountRecord>(
    { pickle: pickle<AccountPickle>(o, w), deviceKeysUploaded: bool(o, "deviceKeysUploaded", w) },
    {
      serverOneTimeKeyCount: optInt(o, "serverOneTimeKeyCount", w),
      fallbackKeyCreatedAt: optInt(o, "fallbackKeyCreatedAt", w),
    },
  );
}

/** The account as one object to seal whole, optional fields only when set. */
export function accountToJson(a: AccountRecord): { readonly [key: string]: Sealable } {
  const out: { [key: string]: Sealable } = { pickle: a.pickle, deviceKeysUploaded: a.deviceKeysUploaded };
  if (a.serverOneTimeKeyCount !== undefined) out.serverOneTimeKeyCount = a.serverOneTimeKeyCount;
  if (a.fallbackKeyCreatedAt !== undefined) out.fallbackKeyCreatedAt = a.fallbackKeyCreatedAt;
  return out;
}

export function parseOlmSession(v: unknown): OlmSessionRecord {
  const w = "olm session";
  const o = obj(v, w);
  return {
    senderKey: id(o, "senderKey", w),
    sessionId: id(o, "sessionId", w),
    pickle: pickle<SessionPickle>(o, w),
    createdAt: int(o, "createdAt", w),
    lastUsedAt: int(o, "lastUsedAt", w),
  };
}

export function parseInboundGroupSession(v: unknown): InboundGroupSessionRecord {
  const w = "inbound group session";
  const o = obj(v, w);
  return {
    roomId: id(o, "roomId", w),
    sessionId: id(o, "sessionId", w),
    senderKey: id(o, "senderKey", w),
    senderClaimedEd25519: str(o, "senderClaimedEd25519", w),
    firstKnownIndex: int(o, "firstKnownIndex", w),
    pickle: pickle<InboundGroupSessionPickle>(o, w),
    imported: bool(o, "imported", w),
    forwarded: bool(o, "forwarded", w),
    forwardingChain: strList(o.forwardingChain, `${w}: forwardingChain`),
    backedUp: bool(o, "backedUp", w),
    ...sharedHistory(o, w),
  };
}

export function parseRivalRoomKey(v: unknown): RivalRoomKeyRecord {
  const w = "rival room key";
  const o = obj(v, w);
  return {
    roomId: id(o, "roomId", w),
    sessionId: id(o, "sessionId", w),
    senderKey: id(o, "senderKey", w),
    senderClaimedEd25519: str(o, "senderClaimedEd25519", w),
    pickle: pickle<InboundGroupSessionPickle>(o, w),
    ...sharedHistory(o, w),
  };
}

/** A rival room key to delete: its room, session and sender key. */
export function parseRivalRoomKeyId(v: unknown): RivalRoomKeyId {
  const w = "rival room key to delete";
  const o = obj(v, w);
  return { roomId: id(o, "roomId", w), sessionId: id(o, "sessionId", w), senderKey: id(o, "senderKey", w) };
}

/** The optional shared-history flag: present only when true, so false and absent read alike. */
function sharedHistory(o: Obj, what: string): { sharedHistory?: true } {
  return optBool(o, "sharedHistory", what) === true ? { sharedHistory: true } : {};
}

function parseSharedWith(v: unknown, what: string): SharedWith {
  const users = obj(v, what);
  const out: { [userId: string]: { [deviceId: string]: number } } = {};
  for (const [userId, devices] of Object.entries(users)) {
    const d = obj(devices, what);
    const inner: { [deviceId: string]: number } = {};
    for (const deviceId of Object.keys(d)) inner[deviceId] = int(d, deviceId, what);
    out[userId] = inner;
  }
  return out;
}

/** The device lists of an outbound session (stored apart from its ratchet by some back ends). */
export function parseOutboundSharing(
  v: unknown,
): Pick<OutboundGroupSessionRecord, "sharedWith" | "pendingShares" | "withheldFrom"> {
  const w = "outbound group session";
  const o = obj(v, w);
  const pending: { [requestId: string]: SharedWith } = {};
  for (const [requestId, shared] of Object.entries(obj(o.pendingShares, `${w}: pendingShares`))) {
    pending[requestId] = parseSharedWith(shared, `${w}: pendingShares`);
  }
  const withheldFrom: { [userId: string]: readonly string[] } = {};
  for (const [userId, devices] of Object.entries(obj(o.withheldFrom, `${w}: withheldFrom`))) {
    withheldFrom[userId] = strList(devices, `${w}: withheldFrom`);
  }
  return {
    sharedWith: parseSharedWith(o.sharedWith, `${w}: sharedWith`),
    pendingShares: pending,
    withheldFrom,
  };
}

export function parseOutboundGroupSession(v: unknown): OutboundGroupSessionRecord {
  const w = "outbound group session";
  const o = obj(v, w);
  return {
    roomId: id(o, "roomId", w),
    sessionId: id(o, "sessionId", w),
    pickle: pickle<OutboundGroupSessionPickle>(o, w),
    createdAt: int(o, "createdAt", w),
    messageCount: int(o, "messageCount", w),
    ...parseOutboundSharing(o),
    ...sharedHistory(o, w),
  };
}

/** Checks a `listInboundGroupSessions` page request (it comes from callers, not from storage). */
export function parsePageRequest(page: unknown): { after: RoomSessionKey | undefined; limit: number } {
  const o = typeof page === "object" && page !== null ? (page as Obj) : {};
  const limit = o.limit;
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError("BAD_OPTION", "the page limit must be a positive integer");
  }
  if (o.after === undefined) return { after: undefined, limit };
  const a = typeof o.after === "object" && o.after !== null ? (o.after as Obj) : {};
  if (typeof a.roomId !== "string" || typeof a.sessionId !== "string") {
    throw new StoreError("BAD_OPTION", "the page cursor must name a room ID and a session ID");
  }
  return { after: { roomId: a.roomId, sessionId: a.sessionId }, limit };
}

/**
 * Checks a `getInboundGroupSessions` request (it comes from callers, not from storage): a list of
 * room and session IDs, at most `MAX_INBOUND_SESSIONS_PER_LOOKUP` of them.
 */
export function parseSessionKeys(keys: unknown): readonly RoomSessionKey[] {
  if (!Array.isArray(keys)) throw new StoreError("BAD_OPTION", "the sessions to look up must be a list");
  if (keys.length > MAX_INBOUND_SESSIONS_PER_LOOKUP) {
    throw new StoreError(
      "BAD_OPTION",
      `at most ${MAX_INBOUND_SESSIONS_PER_LOOKUP} sessions can be looked up at once`,
    );
  }
  for (const k of keys as unknown[]) {
    const o = typeof k === "object" && k !== null ? (k as Obj) : {};
    if (typeof o.roomId !== "string" || typeof o.sessionId !== "string") {
      throw new StoreError("BAD_OPTION", "each session to look up must name a room ID and a session ID");
    }
  }
  return keys as readonly RoomSessionKey[];
}

/** Checks the users of a `getDevicesOfUsers` call: a list of strings, within the bound. */
export function parseUserIds(userIds: unknown): readonly string[] {
  if (!Array.isArray(userIds)) throw new StoreError("BAD_OPTION", "the users to look up must be a list");
  if (userIds.length > MAX_USERS_PER_DEVICE_LOOKUP) {
    throw new StoreError(
      "BAD_OPTION",
      `at most ${MAX_USERS_PER_DEVICE_LOOKUP} users can be looked up at once`,
    );
  }
  for (const u of userIds as unknown[]) {
    if (typeof u !== "string") throw new StoreError("BAD_OPTION", "each user to look up must be a user ID");
  }
  return userIds as readonly string[];
}

/** Checks a per-session record limit given by a caller: a positive integer. */
export function parseLimit(limit: unknown): number {
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError("BAD_OPTION", "the limit must be a positive integer");
  }
  return limit;
}

/** `BackUpReadOptions.maxUnreadable`, when given, is a positive integer (`BAD_OPTION` otherwise). */
export function checkMaxUnreadable(options: BackUpReadOptions | undefined): void {
  const max = options?.maxUnreadable;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
    throw new StoreError("BAD_OPTION", "maxUnreadable must be a positive integer");
  }
}

export function parseOutboundGroupSessionUpdate(v: unknown): OutboundGroupSessionUpdate {
  const w = "outbound group session update";
  const o = obj(v, w);
  const out: {
    -readonly [K in keyof OutboundGroupSessionUpdate]: OutboundGroupSessionUpdate[K];
  } = {
    roomId: id(o, "roomId", w),
    sessionId: id(o, "sessionId", w),
    pickle: pickle<OutboundGroupSessionPickle>(o, w),
    messageCount: int(o, "messageCount", w),
  };
  if (o.addSharedWith !== undefined)
    out.addSharedWith = parseSharedWith(o.addSharedWith, `${w}: addSharedWith`);
  if (o.settledShares !== undefined) out.settledShares = strList(o.settledShares, `${w}: settledShares`);
  if (o.addPendingShares !== undefined) {
    const pending: { [requestId: string]: SharedWith } = {};
    for (const [requestId, shared] of Object.entries(obj(o.addPendingShares, `${w}: addPendingShares`))) {
      pending[requestId] = parseSharedWith(shared, `${w}: addPendingShares`);
    }
    out.addPendingShares = pending;
  }
  if (o.addWithheldFrom !== undefined) {
    const withheld: { [userId: string]: readonly string[] } = {};
    for (const [userId, devices] of Object.entries(obj(o.addWithheldFrom, `${w}: addWithheldFrom`))) {
      withheld[userId] = strList(devices, `${w}: addWithheldFrom`);
    }
    out.addWithheldFrom = withheld;
  }
  return out;
}

/** True when `u` changes no device list (the per-message case). */
export function onlyRatchet(u: OutboundGroupSessionUpdate): boolean {
  return (
    u.addSharedWith === undefined &&
    u.settledShares === undefined &&
    u.addPendingShares === undefined &&
    u.addWithheldFrom === undefined
  );
}

/** An update named a room whose stored outbound session is missing or another one. */
export function outboundNotStored(roomId: string): StoreError {
  return fail("outbound group session update", `room ${roomId} holds no stored session with that ID`);
}

type OutboundSharing = Pick<OutboundGroupSessionRecord, "sharedWith" | "pendingShares" | "withheldFrom">;

/**
 * The device lists after `u`: devices merged into `sharedWith`, settled requests dropped from and
 * new ones added to `pendingShares`, devices added to `withheldFrom`. Inputs are not modified, and
 * untouched parts are shared with the input, so an update that adds nothing costs nothing however
 * many devices hold the key.
 */
export function mergeOutboundSharing(
  sharing: OutboundSharing,
  u: Omit<OutboundGroupSessionUpdate, "roomId" | "sessionId" | "pickle" | "messageCount">,
): OutboundSharing {
  let sharedWith = sharing.sharedWith;
  const added = Object.entries(u.addSharedWith ?? {});
  if (added.length > 0) {
    const next: { [userId: string]: { readonly [deviceId: string]: number } } = { ...sharedWith };
    for (const [userId, devices] of added) next[userId] = { ...next[userId], ...devices };
    sharedWith = next;
  }
  let pendingShares = sharing.pendingShares;
  const settled = new Set(u.settledShares ?? []);
  const newPending = Object.entries(u.addPendingShares ?? {});
  if (settled.size > 0 || newPending.length > 0) {
    pendingShares = Object.fromEntries([
      ...Object.entries(pendingShares).filter(([requestId]) => !settled.has(requestId)),
      ...newPending,
    ]);
  }
  let withheldFrom = sharing.withheldFrom;
  const told = Object.entries(u.addWithheldFrom ?? {});
  if (told.length > 0) {
    const next: { [userId: string]: readonly string[] } = { ...withheldFrom };
    for (const [userId, devices] of told) next[userId] = [...new Set([...(next[userId] ?? []), ...devices])];
    withheldFrom = next;
  }
  return { sharedWith, pendingShares, withheldFrom };
}

const isMap = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A JSON object whose every value is a string (`json` has checked it is plain JSON). */
function isStringMap(v: unknown): boolean {
  if (!isMap(v)) return false;
  for (const k in v) if (typeof v[k] !== "string") return false;
  return true;
}

/**
 * Whether plain JSON (already through `json`) has the shape of `deviceKeysSchema`. Checked by
 * hand: this runs for every device row read back (a sender's devices after a restart), and the
 * schema's generic walk, which copies every nested object, cost more than reading the row.
 * `validate.test.ts` holds it to the schema's verdicts (examples and a property test).
 */
export function hasDeviceKeysShape(v: JsonObject): v is JsonObject & DeviceKeys {
  if (typeof v.user_id !== "string" || typeof v.device_id !== "string") return false;
  const algorithms = v.algorithms;
  if (!Array.isArray(algorithms)) return false;
  for (const a of algorithms) if (typeof a !== "string") return false;
  if (!isStringMap(v.keys)) return false;
  const signatures = v.signatures;
  if (signatures !== undefined) {
    if (!isMap(signatures)) return false;
    for (const k in signatures) if (!isStringMap(signatures[k])) return false;
  }
  const unsigned = v.unsigned;
  if (unsigned !== undefined) {
    if (!isMap(unsigned)) return false;
    const name = unsigned.device_display_name;
    if (name !== undefined && typeof name !== "string") return false;
  }
  return true;
}

/**
 * Signed device keys: plain JSON of the `/keys/query` shape (unknown fields kept: the signature
 * covers them). The object itself is returned, not a copy: every back end copies on the way in
 * and out (JSON text, structured clone, the memory store's clone).
 */
function deviceKeys(o: Obj, what: string): DeviceKeys {
  const keys = json(o, "keys", what);
  if (!hasDeviceKeysShape(keys)) throw fail(what, "keys are not signed device keys");
  return keys;
}

export function parseDevice(v: unknown): DeviceRecord {
  const w = "device";
  const o = obj(v, w);
  return {
    userId: id(o, "userId", w),
    deviceId: id(o, "deviceId", w),
    keys: deviceKeys(o, w),
    curve25519Key: id(o, "curve25519Key", w),
    ed25519Key: id(o, "ed25519Key", w),
    trust: oneOf<DeviceTrust>(o, "trust", DEVICE_TRUST_STATES, w),
    deleted: bool(o, "deleted", w),
  };
}

export function parseCrossSigningIdentity(v: unknown): CrossSigningIdentityRecord {
  const w = "cross-signing identity";
  const o = obj(v, w);
  return { userId: id(o, "userId", w), identity: json(o, "identity", w) };
}

export function parseTrackedUser(v: unknown): TrackedUserRecord {
  const w = "tracked user";
  const o = obj(v, w);
  return withOptional(
    { userId: id(o, "userId", w), outdated: bool(o, "outdated", w) },
    { senderOrder: optInt(o, "senderOrder", w) },
  );
}

function parseRecipient(v: unknown): KeyRequestRecipient {
  const w = "key request recipient";
  const o = obj(v, w);
  return { userId: id(o, "userId", w), deviceId: id(o, "deviceId", w) };
}

export function parseOutgoingKeyRequest(v: unknown): OutgoingKeyRequestRecord {
  const w = "outgoing key request";
  const o = obj(v, w);
  const recipients = o.recipients;
  if (!Array.isArray(recipients) || recipients.length > MAX_STORED_LIST_LENGTH) {
    throw fail(w, "recipients is not a list");
  }
  return {
    requestId: id(o, "requestId", w),
    roomId: id(o, "roomId", w),
    sessionId: id(o, "sessionId", w),
    senderKey: str(o, "senderKey", w),
    recipients: recipients.map(parseRecipient),
    state: oneOf<KeyRequestState>(o, "state", KEY_REQUEST_STATES, w),
    createdAt: int(o, "createdAt", w),
  };
}

export function parseWithheld(v: unknown): WithheldRecord {
  const w = "withheld notice";
  const o = obj(v, w);
  return withOptional<WithheldRecord>(
    {
      roomId: id(o, "roomId", w),
      sessionId: id(o, "sessionId", w),
      code: id(o, "code", w),
      sender: id(o, "sender", w),
    },
    { reason: optStr(o, "reason", w), senderKey: optStr(o, "senderKey", w) },
  );
}

export function parseReplay(v: unknown): ReplayRecord {
  const w = "replay record";
  const o = obj(v, w);
  return {
    roomId: id(o, "roomId", w),
    sessionId: id(o, "sessionId", w),
    messageIndex: int(o, "messageIndex", w),
    eventId: id(o, "eventId", w),
    timestamp: int(o, "timestamp", w),
  };
}

export function parseRoomSettings(v: unknown): RoomSettingsRecord {
  const w = "room settings";
  const o = obj(v, w);
  return withOptional<RoomSettingsRecord>(
    { roomId: id(o, "roomId", w), algorithm: id(o, "algorithm", w) },
    {
      rotationPeriodMs: optInt(o, "rotationPeriodMs", w),
      rotationPeriodMessages: optInt(o, "rotationPeriodMessages", w),
      verifyDevices: optBool(o, "verifyDevices", w),
      shareWith: o.shareWith === undefined ? undefined : oneOf(o, "shareWith", SHARE_WITH_VALUES, w),
      senderRequirement:
        o.senderRequirement === undefined
          ? undefined
          : oneOf(o, "senderRequirement", SENDER_REQUIREMENT_VALUES, w),
      errorOnVerifiedUserProblems: optBool(o, "errorOnVerifiedUserProblems", w),
    },
  );
}

export function parseBackupState(v: unknown): BackupStateRecord {
  const w = "backup state";
  const o = obj(v, w);
  return withOptional(
    { version: id(o, "version", w), algorithm: id(o, "algorithm", w), authData: json(o, "authData", w) },
    { trusted: optBool(o, "trusted", w), stopped: optStr(o, "stopped", w) },
  );
}

export function parseQueuedRequest(v: unknown): QueuedRequestRecord {
  const w = "queued request";
  const o = obj(v, w);
  return {
    requestId: id(o, "requestId", w),
    kind: id(o, "kind", w),
    body: json(o, "body", w),
    createdAt: int(o, "createdAt", w),
  };
}

export function parseOlmMessageHash(v: unknown): OlmMessageHashRecord {
  const w = "olm message hash";
  const o = obj(v, w);
  return { senderKey: id(o, "senderKey", w), hash: id(o, "hash", w) };
}

/** Checks a custom value's key. */
export function parseCustomKey(key: unknown): string {
  if (
    typeof key !== "string" ||
    key.length === 0 ||
    key.length > MAX_STORED_ID_LENGTH ||
    !key.isWellFormed()
  ) {
    throw fail("custom value", "key is not a non-empty string");
  }
  return key;
}

/** Checks a custom value (any JSON value). */
export function parseCustomValue(key: string, value: unknown): JsonValue {
  return asJsonObject({ value }, `custom value ${key}`).value as JsonValue;
}

/** Checks a secret's name. */
export function parseSecretName(name: unknown): string {
  if (
    typeof name !== "string" ||
    name.length === 0 ||
    name.length > MAX_STORED_ID_LENGTH ||
    !name.isWellFormed()
  ) {
    throw fail("secret", "name is not a non-empty string");
  }
  return name;
}

/** Checks a secret's name and value; returns the value. */
export function parseSecret(name: unknown, value: unknown): string {
  const n = parseSecretName(name);
  if (typeof value !== "string") throw fail("secret", `value of ${n} is not a string`);
  return value;
}

/** Checks a sync token. */
export function parseNextBatch(v: unknown): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_STORED_ID_LENGTH) {
    throw fail("nextBatch", "not a non-empty string");
  }
  return v;
}
