/**
 * Canonical JSON as the Matrix specification defines it (appendices, "Canonical JSON"): no
 * insignificant whitespace, object keys sorted by Unicode code point, integers only in
 * [-(2^53)+1, 2^53-1] written without exponent or fraction (-0 becomes 0), strings as UTF-8 with
 * only `"`, `\` and control characters escaped (short forms \b \t \n \f \r, else \u00xx).
 */

export type CanonicalJsonErrorCode =
  /** A float, NaN, an infinity or an integer outside the safe range. */
  | "BAD_NUMBER"
  /** A string with an unpaired surrogate: it has no UTF-8 encoding. */
  | "BAD_STRING"
  /** undefined in an array, a function, symbol, bigint, or an object that is not plain. */
  | "BAD_VALUE"
  /** Nesting deeper than MAX_CANONICAL_JSON_DEPTH (also what a cyclic structure runs into). */
  | "TOO_DEEP";

export class CanonicalJsonError extends Error {
  override readonly name = "CanonicalJsonError";
  readonly code: CanonicalJsonErrorCode;

  constructor(code: CanonicalJsonErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * Deepest nesting accepted. Signed objects in Matrix nest a handful of levels; the bound keeps a
 * hostile object from exhausting the stack (and turns cycles into an error instead of a hang).
 */
export const MAX_CANONICAL_JSON_DEPTH = 64;

const MAX_INTEGER = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const SURROGATE = /[\uD800-\uDFFF]/;

/** The canonical JSON text of `value`. Throws `CanonicalJsonError` for anything not encodable. */
export function canonicalJson(value: unknown): string {
  return encode(value, 0);
}

function encode(value: unknown, depth: number): string {
  switch (typeof value) {
    case "string":
      return encodeString(value);
    case "number":
      if (!Number.isInteger(value) || value > MAX_INTEGER || value < -MAX_INTEGER) {
        throw new CanonicalJsonError("BAD_NUMBER", "canonical JSON allows only integers within ±(2^53-1)");
      }
      // String(-0) is "0", as the specification's example requires.
      return String(value);
    case "boolean":
      return value ? "true" : "false";
    case "object":
      if (value === null) return "null";
      if (depth >= MAX_CANONICAL_JSON_DEPTH) {
        throw new CanonicalJsonError("TOO_DEEP", `nesting deeper than ${MAX_CANONICAL_JSON_DEPTH}`);
      }
      if (Array.isArray(value)) return encodeArray(value, depth + 1);
      return encodeObject(value, depth + 1);
    default:
      throw new CanonicalJsonError("BAD_VALUE", `a ${typeof value} has no JSON form`);
  }
}

function encodeString(s: string): string {
  if (LONE_SURROGATE.test(s))
    throw new CanonicalJsonError("BAD_STRING", "string contains an unpaired surrogate");
  // For well-formed strings, JSON.stringify escapes exactly what the canonical grammar escapes:
  // `"`, `\`, the five short control escapes and \u00xx (lowercase) for the other controls.
  return JSON.stringify(s);
}

function encodeArray(items: readonly unknown[], depth: number): string {
  let out = "[";
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item === undefined) throw new CanonicalJsonError("BAD_VALUE", "undefined inside an array");
    if (i > 0) out += ",";
    out += encode(item, depth);
  }
  return `${out}]`;
}

function encodeObject(value: object, depth: number): string {
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new CanonicalJsonError("BAD_VALUE", "only plain objects have a canonical JSON form");
  }
  const record = value as Record<string, unknown>;
  // Members whose value is undefined are absent, as in JSON.stringify (optional fields).
  const keys = Object.keys(record).filter((k) => record[k] !== undefined);
  keys.sort(compareCodePoints);
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0) out += ",";
    out += `${encodeString(key)}:${encode(record[key], depth)}`;
  }
  return `${out}}`;
}

/**
 * Orders strings by Unicode code point. JavaScript's default sort compares UTF-16 code units,
 * which puts astral characters (surrogate pairs, 0xD800-0xDFFF) before U+E000-U+FFFF; code
 * point order puts them after.
 */
export function compareCodePoints(a: string, b: string): number {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

/** Shifts surrogates above the rest of the BMP so code unit order becomes code point order. */
function rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
