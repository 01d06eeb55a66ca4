// JSON helpers shared by the wire schemas.
import * as z from "./zod.ts";

/** Any JSON object. Event content stays open: its shape depends on the event type. */
export const jsonObjectSchema = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof jsonObjectSchema>;

/**
 * Longest identifier taken from the network where it names something a store keeps apart (a room
 * ID keying the rooms of a sync response): the spec caps room, event and user IDs at 255 bytes. The
 * same bound as the E2EE engine's `MAX_ID_LENGTH` and the session's `MAX_SESSION_ID_LENGTH`.
 */
export const MAX_IDENTIFIER_LENGTH = 255;

/**
 * An identifier the stores keep as it came: non-empty, at most `MAX_IDENTIFIER_LENGTH` long and
 * well-formed Unicode. JSON may carry a lone surrogate (`"\\ud800"`), which SQLite turns into U+FFFD:
 * two such IDs would be saved as one, and neither read back as it was.
 */
export function isIdentifier(value: unknown): value is string {
  return (
    typeof value === "string" &&
    value.length > 0 &&
    value.length <= MAX_IDENTIFIER_LENGTH &&
    value.isWellFormed()
  );
}

/**
 * An event ID as far as a client keys anything by one (a thread root, a read receipt's event): an
 * identifier (`isIdentifier`) after the `$` sigil. Room versions differ in what follows it (a
 * hash, or `opaque:server`), so that is not checked further.
 */
export function isEventId(value: unknown): value is string {
  return isIdentifier(value) && value.length > 1 && value.startsWith("$");
}

/**
 * An array whose malformed items are dropped instead of failing the whole document: one bad event
 * in a sync response must not stop the others (or the sync loop) from being processed.
 */
export function lenientArray<T extends z.ZodMiniType>(item: T) {
  return z.pipe(
    z.array(z.unknown()),
    z.transform((items): z.output<T>[] => {
      const out: z.output<T>[] = [];
      for (const raw of items) {
        const parsed = item.safeParse(raw);
        if (parsed.success) out.push(parsed.data);
      }
      return out;
    }),
  );
}

/**
 * Like `lenientArray`, keeping only the first `max` well-formed items (the rest not even read): a
 * list whose length is a presentation matter (login flows, identity providers) is trimmed rather
 * than refused whole when a server sends more.
 */
export function firstValidItems<T extends z.ZodMiniType>(item: T, max: number) {
  return z.pipe(
    z.array(z.unknown()),
    z.transform((items): z.output<T>[] => {
      const out: z.output<T>[] = [];
      for (const raw of items) {
        if (out.length >= max) break;
        const parsed = item.safeParse(raw);
        if (parsed.success) out.push(parsed.data);
      }
      return out;
    }),
  );
}

/**
 * Like `lenientArray`, for maps keyed by ID (rooms by room ID): malformed values are dropped, and
 * so are entries whose key is not an identifier (`isIdentifier`). (A `__proto__` key never gets
 * here: the record schema's copy leaves it out.)
 */
export function lenientRecord<T extends z.ZodMiniType>(value: T) {
  return z.pipe(
    z.record(z.string(), z.unknown()),
    z.transform((rec): Record<string, z.output<T>> => {
      const out: Record<string, z.output<T>> = {};
      for (const [key, raw] of Object.entries(rec)) {
        if (!isIdentifier(key)) continue;
        const parsed = value.safeParse(raw);
        if (parsed.success) out[key] = parsed.data;
      }
      return out;
    }),
  );
}

/**
 * A value that is dropped (read as absent) when malformed instead of failing the whole document,
 * as `lenientArray` does for items. Not `z.catch`, which pulls some 8 KB (minified) of zod's
 * utilities into browser bundles.
 */
export function lenientOptional<T extends z.ZodMiniType>(schema: T) {
  return z.optional(
    z.pipe(
      z.unknown(),
      z.transform((raw): z.output<T> | undefined => {
        if (raw === undefined) return undefined;
        const parsed = schema.safeParse(raw);
        return parsed.success ? parsed.data : undefined;
      }),
    ),
  );
}

/**
 * Deepest nesting of an event from the network, the event object being level 1. Deeper events are
 * dropped as malformed: serializing one (`JSON.stringify`, a structured clone) overflows the stack
 * past a few thousand levels, so one member's state event could otherwise stop every client that
 * stores room state from syncing. matrix-rust-sdk's JSON parser stops at 128 levels too.
 */
export const MAX_EVENT_DEPTH = 128;

/**
 * Whether `value` reads back unchanged from the stores, as every event from the network must: it
 * nests at most `levels` objects or arrays deep (a scalar nests 0) and holds no number `JSON.parse` made ±Infinity of
 * (`1e400`, past a double's range). `JSON.stringify` writes Infinity as null, so such an event would
 * read one way until a restart and another after it (a power level of Infinity becoming null).
 */
export function storableWithin(value: unknown, levels: number): boolean {
  return typeof value !== "object" || value === null
    ? typeof value !== "number" || Number.isFinite(value)
    : objectStorableWithin(value, levels);
}

// Runs on every event of every sync response: scalars are told apart before any call.
function objectStorableWithin(value: object, levels: number): boolean {
  if (levels <= 0) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === "object") {
        if (v !== null && !objectStorableWithin(v, levels - 1)) return false;
      } else if (typeof v === "number" && !Number.isFinite(v)) return false;
    }
    return true;
  }
  for (const key in value) {
    const v: unknown = (value as Record<string, unknown>)[key];
    if (typeof v === "object") {
      if (v !== null && !objectStorableWithin(v, levels - 1)) return false;
    } else if (typeof v === "number" && !Number.isFinite(v)) return false;
  }
  return true;
}

/** A JSON object (not null, not an array): the first check on anything from the network. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Why `value` (content we are about to send) would not reach others as it is, or undefined when
 * it would: nesting deeper than `levels` (others drop it, see `MAX_EVENT_DEPTH`), a number JSON has
 * no text for (`JSON.stringify` writes NaN and ±Infinity as null), or a string or key that is not
 * well-formed Unicode (a lone surrogate: servers refuse it in plaintext rooms, stores change it).
 */
export function outgoingJsonProblem(value: unknown, levels: number): string | undefined {
  if (typeof value === "string") return value.isWellFormed() ? undefined : "has a lone surrogate";
  if (typeof value === "number") return Number.isFinite(value) ? undefined : "has a NaN or infinite number";
  if (typeof value !== "object" || value === null) return undefined;
  if (levels <= 0) return `nests deeper than the ${MAX_EVENT_DEPTH} levels others keep`;
  if (Array.isArray(value)) {
    for (const v of value) {
      const problem = outgoingJsonProblem(v, levels - 1);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    if (!key.isWellFormed()) return "has a key with a lone surrogate";
    const problem = outgoingJsonProblem(v, levels - 1);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
