// A joined room's ephemeral events from `/sync` (`m.typing`, `m.receipt`), checked before the
// client keeps or emits them: the server writes their content, any shape and size.
import { isIdentifier, type JsonObject } from "../../wire/index.ts";

/**
 * Users kept of one `m.typing` event (`Room.typingUserIds`), at most: the first ones, by the
 * server's order. The list is kept per room, and a server may name any number of users.
 */
export const MAX_TYPING_USERS = 100;

const isUserId = (v: unknown): v is string => isIdentifier(v) && v.startsWith("@");

/**
 * The users an `m.typing` content names: user IDs only (well-formed, at most `MAX_IDENTIFIER_LENGTH`),
 * each once, at most `MAX_TYPING_USERS`; none when `user_ids` is no array.
 */
export function typingUsersOf(content: JsonObject): string[] {
  const ids = content.user_ids;
  if (!Array.isArray(ids)) return [];
  const out = new Set<string>();
  for (const id of ids) {
    if (out.size >= MAX_TYPING_USERS) break;
    if (isUserId(id)) out.add(id);
  }
  return [...out];
}

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** `[key, value]` for the entries of `obj` whose key passes `keyOk` and whose value `value` keeps. */
function kept(
  obj: JsonObject,
  keyOk: (key: string) => boolean,
  value: (v: JsonObject) => JsonObject | undefined,
): [string, JsonObject][] {
  const out: [string, JsonObject][] = [];
  for (const [k, v] of Object.entries(obj)) {
    const w = keyOk(k) && isObject(v) ? value(v) : undefined;
    if (w !== undefined) out.push([k, w]);
  }
  return out;
}

/** Built with `Object.fromEntries`, which defines each key: a `__proto__` key stays a key. */
const nonEmpty = (entries: [string, JsonObject][]): JsonObject | undefined =>
  entries.length > 0 ? Object.fromEntries(entries) : undefined;

/** A receipt's fields of the spec's types: `ts` (a non-negative safe integer) and `thread_id`. */
function receiptOf(r: JsonObject): JsonObject {
  const out: JsonObject = {};
  if (typeof r.ts === "number" && Number.isSafeInteger(r.ts) && r.ts >= 0) out.ts = r.ts;
  if (isIdentifier(r.thread_id)) out.thread_id = r.thread_id;
  return out;
}

/**
 * An `m.receipt` content as the spec shapes it: event ID → receipt type → user ID → receipt
 * (`ts`, `thread_id`, when of the right type). Keys that are not an event ID, receipt type or
 * user ID (ill-formed, overlong, or without their sigil), values that are no objects and receipt
 * fields of the wrong type are left out, then whatever that left empty. Undefined when nothing is left.
 */
export function receiptsOf(content: JsonObject): JsonObject | undefined {
  return nonEmpty(
    kept(
      content,
      (eventId) => isIdentifier(eventId) && eventId.startsWith("$"),
      (byType) =>
        nonEmpty(kept(byType, isIdentifier, (byUser) => nonEmpty(kept(byUser, isUserId, receiptOf)))),
    ),
  );
}
