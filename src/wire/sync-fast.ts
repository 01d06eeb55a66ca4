// A hand-written check of the common `/sync` response, the one every long poll returns: well-formed
// rooms and events, nothing to drop. Its result is exactly what `syncResponseSchema` gives for the
// same input (sync-fast.test.ts compares them over generated responses); anything else — a
// malformed event or room the schema would drop, a wrong type anywhere — returns undefined, and the
// schema then decides (and reports the issues). It runs on every sync response: the schema
// library's generic walk of it was a visible part of a client's CPU per message (bench/README.md,
// bots section), as it was for encrypted events (see `parseMegolmEvent`).
//
// Input is what `JSON.parse` returns. Objects of `z.object` schemas are rebuilt with their known
// keys only (the schema strips the others); loose objects (events) and their contents are returned
// as they are (the schema's copies hold the same keys and values).
import type { BasicEvent, ClientEvent, StateEvent, StrippedStateEvent, ToDeviceEvent } from "./events.ts";
import { isIdentifier, isRecord, MAX_EVENT_DEPTH, storableWithin } from "./json.ts";
import type {
  DeviceLists,
  InvitedRoomSync,
  JoinedRoomSync,
  KnockedRoomSync,
  LeftRoomSync,
  NotificationCountsSync,
  OneTimeKeyCounts,
  RoomSummary,
  SyncResponse,
  Timeline,
} from "./sync.ts";

/**
 * An object the schema keeps as it is. It drops an own `__proto__` key (which `JSON.parse` can
 * produce) from the events and contents it copies: such objects are left to it.
 */
const plain = (v: unknown): v is Record<string, unknown> => isRecord(v) && !Object.hasOwn(v, "__proto__");
const nonEmpty = (v: unknown): v is string => typeof v === "string" && v.length > 0;
const optString = (v: unknown): boolean => v === undefined || typeof v === "string";
const optRecord = (v: unknown): boolean => v === undefined || plain(v);
const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const optCount = (v: unknown): boolean => v === undefined || count(v);

/** A copy of an array of strings, or undefined when it is not one. */
function strings(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  for (const s of v) if (typeof s !== "string") return undefined;
  return [...v];
}

function isUnsigned(u: unknown): boolean {
  return (
    plain(u) &&
    (u.age === undefined || (typeof u.age === "number" && Number.isFinite(u.age))) &&
    optString(u.transaction_id) &&
    optRecord(u.prev_content) &&
    optRecord(u.redacted_because) &&
    optString(u.membership)
  );
}

function isClientEvent(e: unknown): e is ClientEvent {
  return (
    plain(e) &&
    nonEmpty(e.event_id) &&
    nonEmpty(e.type) &&
    nonEmpty(e.sender) &&
    typeof e.origin_server_ts === "number" &&
    Number.isFinite(e.origin_server_ts) &&
    plain(e.content) &&
    optString(e.state_key) &&
    optString(e.room_id) &&
    optString(e.redacts) &&
    (e.unsigned === undefined || isUnsigned(e.unsigned)) &&
    storableWithin(e, MAX_EVENT_DEPTH)
  );
}

const isStateEvent = (e: unknown): e is StateEvent => isClientEvent(e) && typeof e.state_key === "string";

const isBasicEvent = (e: unknown): e is BasicEvent =>
  plain(e) && nonEmpty(e.type) && plain(e.content) && storableWithin(e, MAX_EVENT_DEPTH);

const isStrippedState = (e: unknown): e is StrippedStateEvent =>
  plain(e) &&
  nonEmpty(e.type) &&
  typeof e.state_key === "string" &&
  nonEmpty(e.sender) &&
  plain(e.content) &&
  storableWithin(e, MAX_EVENT_DEPTH);

const isToDeviceEvent = (e: unknown): e is ToDeviceEvent =>
  plain(e) &&
  nonEmpty(e.type) &&
  nonEmpty(e.sender) &&
  plain(e.content) &&
  storableWithin(e, MAX_EVENT_DEPTH);

/** A copy of an array whose items all pass `is`; undefined when one does not (the schema drops it). */
function every<T>(v: unknown, is: (e: unknown) => e is T): T[] | undefined {
  if (!Array.isArray(v)) return undefined;
  for (const e of v) if (!is(e)) return undefined;
  return [...v];
}

/** `{ events?: T[] }`, the other keys stripped. */
function eventsOf<T>(v: unknown, is: (e: unknown) => e is T): { events?: T[] } | undefined {
  if (!isRecord(v)) return undefined;
  if (v.events === undefined) return {};
  const events = every(v.events, is);
  return events === undefined ? undefined : { events };
}

/** Sets `out[key]` to `parse(v[key])` when present; false when that fails. */
function field<O, K extends keyof O & string>(
  out: O,
  v: Record<string, unknown>,
  key: K,
  parse: (x: unknown) => O[K] | undefined,
): boolean {
  const x = v[key];
  if (x === undefined) return true;
  const parsed = parse(x);
  if (parsed === undefined) return false;
  out[key] = parsed;
  return true;
}

function summary(v: unknown): RoomSummary | undefined {
  if (!isRecord(v)) return undefined;
  const out: RoomSummary = {};
  if (!field(out, v, "m.heroes", strings)) return undefined;
  for (const key of ["m.joined_member_count", "m.invited_member_count"] as const) {
    if (!optCount(v[key])) return undefined;
    if (v[key] !== undefined) out[key] = v[key] as number;
  }
  return out;
}

function notificationCounts(x: unknown): NotificationCountsSync | undefined {
  if (!isRecord(x) || !optCount(x.highlight_count) || !optCount(x.notification_count)) return undefined;
  const n: NotificationCountsSync = {};
  if (x.highlight_count !== undefined) n.highlight_count = x.highlight_count as number;
  if (x.notification_count !== undefined) n.notification_count = x.notification_count as number;
  return n;
}

function timeline(v: unknown): Timeline | undefined {
  if (!isRecord(v)) return undefined;
  const out: Timeline = {};
  if (!field(out, v, "events", (x) => every(x, isClientEvent))) return undefined;
  if (v.limited !== undefined) {
    if (typeof v.limited !== "boolean") return undefined;
    out.limited = v.limited;
  }
  if (v.prev_batch !== undefined) {
    if (typeof v.prev_batch !== "string") return undefined;
    out.prev_batch = v.prev_batch;
  }
  return out;
}

const stateOf = (x: unknown) => eventsOf(x, isStateEvent);
const basicOf = (x: unknown) => eventsOf(x, isBasicEvent);

function joinedRoom(v: unknown): JoinedRoomSync | undefined {
  if (!isRecord(v)) return undefined;
  const out: JoinedRoomSync = {};
  const ok =
    field(out, v, "summary", summary) &&
    field(out, v, "state", stateOf) &&
    field(out, v, "timeline", timeline) &&
    field(out, v, "ephemeral", basicOf) &&
    field(out, v, "account_data", basicOf) &&
    field(out, v, "unread_notifications", notificationCounts) &&
    field(out, v, "unread_thread_notifications", (x) => roomMap(x, notificationCounts));
  return ok ? out : undefined;
}

function leftRoom(v: unknown): LeftRoomSync | undefined {
  if (!isRecord(v)) return undefined;
  const out: LeftRoomSync = {};
  const ok =
    field(out, v, "state", stateOf) &&
    field(out, v, "timeline", timeline) &&
    field(out, v, "account_data", basicOf);
  return ok ? out : undefined;
}

function invitedRoom(v: unknown): InvitedRoomSync | undefined {
  if (!isRecord(v)) return undefined;
  const out: InvitedRoomSync = {};
  return field(out, v, "invite_state", (x) => eventsOf(x, isStrippedState)) ? out : undefined;
}

function knockedRoom(v: unknown): KnockedRoomSync | undefined {
  if (!isRecord(v)) return undefined;
  const out: KnockedRoomSync = {};
  return field(out, v, "knock_state", (x) => eventsOf(x, isStrippedState)) ? out : undefined;
}

/**
 * A map by ID (rooms, threads) whose every value parses; undefined when one does not (the schema
 * drops it).
 */
function roomMap<T>(v: unknown, parse: (x: unknown) => T | undefined): Record<string, T> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, T> = {};
  for (const key of Object.keys(v)) {
    // The schema's copy would set the prototype for this key, and drops what is no room ID.
    if (key === "__proto__" || !isIdentifier(key)) return undefined;
    const room = parse(v[key]);
    if (room === undefined) return undefined;
    out[key] = room;
  }
  return out;
}

function deviceLists(v: unknown): DeviceLists | undefined {
  if (!isRecord(v)) return undefined;
  const out: DeviceLists = {};
  return field(out, v, "changed", strings) && field(out, v, "left", strings) ? out : undefined;
}

function keyCounts(v: unknown): OneTimeKeyCounts | undefined {
  if (!isRecord(v)) return undefined;
  const out: OneTimeKeyCounts = {};
  for (const key of Object.keys(v)) {
    if (key === "__proto__" || !count(v[key])) return undefined;
    out[key] = v[key] as number;
  }
  return out;
}

/**
 * `syncResponseSchema`'s result for a well-formed `/sync` response, without the schema; undefined
 * when the response is anything else (then only the schema can say what it makes of it).
 */
export function parseCommonSyncResponse(v: unknown): SyncResponse | undefined {
  if (!isRecord(v) || !nonEmpty(v.next_batch) || !v.next_batch.isWellFormed()) return undefined;
  const out: SyncResponse = { next_batch: v.next_batch };
  const ok =
    field(out, v, "rooms", (x) => {
      if (!isRecord(x)) return undefined;
      const rooms: NonNullable<SyncResponse["rooms"]> = {};
      const fine =
        field(rooms, x, "join", (m) => roomMap(m, joinedRoom)) &&
        field(rooms, x, "invite", (m) => roomMap(m, invitedRoom)) &&
        field(rooms, x, "leave", (m) => roomMap(m, leftRoom)) &&
        field(rooms, x, "knock", (m) => roomMap(m, knockedRoom));
      return fine ? rooms : undefined;
    }) &&
    field(out, v, "presence", basicOf) &&
    field(out, v, "account_data", basicOf) &&
    field(out, v, "to_device", (x) => eventsOf(x, isToDeviceEvent)) &&
    field(out, v, "device_lists", deviceLists) &&
    field(out, v, "device_one_time_keys_count", keyCounts) &&
    field(out, v, "device_unused_fallback_key_types", strings);
  return ok ? out : undefined;
}
