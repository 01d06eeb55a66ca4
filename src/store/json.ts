/** JSON values as the store keeps them: pickles, device keys and identities are opaque to it. */
import { StoreError } from "./errors.ts";

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
export type JsonObject = { readonly [key: string]: JsonValue };

/** Deepest nesting accepted in a stored JSON value (pickles and signed keys nest a few levels). */
export const MAX_STORED_JSON_DEPTH = 32;

function check(value: unknown, depth: number, what: string): void {
  if (depth > MAX_STORED_JSON_DEPTH) throw invalid(what, "nests too deeply");
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw invalid(what, "holds a non-finite number");
      return;
    case "object": {
      if (value === null) return;
      if (Array.isArray(value)) {
        for (const v of value) check(v, depth + 1, what);
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw invalid(what, "holds a non-plain object");
      for (const v of Object.values(value)) check(v, depth + 1, what);
      return;
    }
    default:
      throw invalid(what, `holds a value of type ${typeof value}`);
  }
}

function invalid(what: string, why: string): StoreError {
  return new StoreError("INVALID_RECORD", `${what} ${why}; stored values must be plain JSON`);
}

/**
 * Checks that `value` is a plain JSON object (no class instances, `undefined`, functions, bigints
 * or non-finite numbers) and returns it typed. Use it to hand a pickle to the store:
 * `pickle: asJsonObject(session.toPickle())`.
 */
export function asJsonObject(value: unknown, what = "value"): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(what, "is not an object");
  }
  check(value, 0, what);
  return value as JsonObject;
}
