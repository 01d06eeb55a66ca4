/**
 * Bounds on identifiers that arrive from the network and end up in the store. The spec caps user,
 * room and event IDs at 255 bytes; anything longer is refused at the edge, so a hostile event can
 * never make a whole sync step fail on the store's own limits.
 */
import * as z from "../wire/zod.ts";

export const MAX_ID_LENGTH = 255;
/**
 * Largest Megolm ciphertext we decrypt, in bytes of its base64 text: the spec caps a whole event at
 * 65 536 bytes (Client-Server API, "Size limits"), so a longer ciphertext cannot be a real event
 * and is refused before any cryptographic work.
 */
export const MAX_ROOM_EVENT_CIPHERTEXT_BYTES = 65_536;
/**
 * Largest Olm message body we decrypt (a to-device event): the same 65 536-byte bound, which
 * homeservers apply to each to-device message as to events.
 */
export const MAX_TO_DEVICE_CIPHERTEXT_BYTES = 65_536;

/**
 * Deepest nesting of a device's or a cross-signing key object from `/keys/query` (real ones nest 3
 * levels: the object, `signatures`, the user's signatures). Deeper ones are `MALFORMED`: they are
 * kept whole in the store, which refuses values nesting past `MAX_STORED_JSON_DEPTH`, so one
 * user's keys would otherwise make every sync step of everyone sharing a room with them fail.
 */
export const MAX_KEYS_JSON_DEPTH = 16;

/**
 * Length of a forwarding chain a forwarded room key (`m.forwarded_room_key`) may carry; the stored
 * chain adds the device that forwarded it, so a stored chain is at most one longer. An imported or
 * restored key's chain (which anyone who can write to the backup chooses) is cut to that many
 * entries, its last ones: the key stays usable, and the chain only says that the key was forwarded
 * (never better than unverified) and by whom, its last entry. A key we forward carries the last
 * MAX_FORWARDING_CHAIN entries of what we keep, so it can move on again.
 */
export const MAX_FORWARDING_CHAIN = 16;

/** Free-text fields we keep (withheld reasons). */
export const MAX_REASON_LENGTH = 1000;

/**
 * A non-empty identifier (user, room, event, device or session ID, or a base64 key). It must be
 * well-formed Unicode: JSON may carry a lone surrogate (`"\\ud800"`), which no store can keep as
 * it is (SQLite turns it into U+FFFD), so such an ID would not read back as it was written.
 */
export const idSchema = z.string().check(
  z.minLength(1),
  z.maxLength(MAX_ID_LENGTH),
  z.refine((s) => s.isWellFormed(), "not well-formed Unicode"),
);

export function isId(value: unknown): value is string {
  return (
    typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH && value.isWellFormed()
  );
}

/** Free text we keep (a withheld reason): bounded and well-formed. */
export const reasonSchema = z.string().check(
  z.maxLength(MAX_REASON_LENGTH),
  z.refine((s) => s.isWellFormed(), "not well-formed Unicode"),
);
