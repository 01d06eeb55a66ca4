// JSON helpers shared by the wire schemas.
import * as z from "./zod.ts";

/** Any JSON object. Event content stays open: its shape depends on the event type. */
export const jsonObjectSchema = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof jsonObjectSchema>;

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

/** Like `lenientArray`, for maps keyed by ID (rooms by room ID): malformed values are dropped. */
export function lenientRecord<T extends z.ZodMiniType>(value: T) {
  return z.pipe(
    z.record(z.string(), z.unknown()),
    z.transform((rec): Record<string, z.output<T>> => {
      const out: Record<string, z.output<T>> = {};
      for (const [key, raw] of Object.entries(rec)) {
        const parsed = value.safeParse(raw);
        if (parsed.success) out[key] = parsed.data;
      }
      return out;
    }),
  );
}

/** A JSON object (not null, not an array): the first check on anything from the network. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
