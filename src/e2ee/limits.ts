/**
 * Bounds on identifiers that arrive from the network and end up in the store. The spec caps user,
 * room and event IDs at 255 bytes; anything longer is refused at the edge, so a hostile event can
 * never make a whole sync step fail on the store's own limits.
 */
import { z } from "zod";

export const MAX_ID_LENGTH = 255;
/** Free-text fields we keep (withheld reasons). */
export const MAX_REASON_LENGTH = 1000;

/** A non-empty identifier (user, room, event, device or session ID, or a base64 key). */
export const idSchema = z.string().min(1).max(MAX_ID_LENGTH);

export function isId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH;
}
