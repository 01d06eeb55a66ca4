import { assertBytes, CryptoPrimitiveError } from "./errors.ts";

/**
 * True when `a` and `b` hold the same bytes. The time taken depends only on the lengths (which are
 * public for every MAC and key Keyroom compares), never on where the first difference is.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  assertBytes(a, "first operand");
  assertBytes(b, "second operand");
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * `constantTimeEqual(a[0..length), b[bOffset..bOffset + length))` without making views: for
 * truncated MACs checked in place inside a message. False if either range is out of bounds.
 */
export function constantTimeEqualAt(a: Uint8Array, b: Uint8Array, bOffset: number, length: number): boolean {
  assertBytes(a, "first operand");
  assertBytes(b, "second operand");
  if (!Number.isSafeInteger(bOffset) || bOffset < 0 || length > a.length || bOffset + length > b.length) {
    return false;
  }
  let diff = 0;
  for (let i = 0; i < length; i++) diff |= a[i]! ^ b[bOffset + i]!;
  return diff === 0;
}

/** One fresh array holding the inputs one after another. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) {
    assertBytes(p, "concatBytes part");
    length += p.length;
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Overwrites `bytes` with zeros. Best effort only: the JavaScript engine may have copied the data
 * elsewhere, but secrets we hold should not outlive their use in the arrays we control.
 */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}

const encoder = new TextEncoder();
// fatal: malformed input is an error, not U+FFFD; ignoreBOM: a leading U+FEFF is data, kept as is.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// With the u flag this matches only surrogates that are not part of a valid pair.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * UTF-8 bytes of `text`. A string with an unpaired surrogate has no UTF-8 form; rather than
 * silently substituting U+FFFD (which would make two different strings sign the same), refuse it.
 */
export function utf8Encode(text: string): Uint8Array {
  if (typeof text !== "string") throw new CryptoPrimitiveError("BAD_ARGUMENT", "utf8Encode needs a string");
  if (LONE_SURROGATE.test(text)) {
    throw new CryptoPrimitiveError("BAD_UTF8", "string contains an unpaired surrogate");
  }
  return encoder.encode(text);
}

/**
 * `utf8Encode` into `out`, for callers that encode into a buffer of their own rather than a new
 * array each time. `out` must hold the worst case, 3 bytes per UTF-16 code unit of `text`
 * (`BAD_LENGTH` otherwise); returns the number of bytes written.
 */
export function utf8EncodeInto(text: string, out: Uint8Array): number {
  if (typeof text !== "string")
    throw new CryptoPrimitiveError("BAD_ARGUMENT", "utf8EncodeInto needs a string");
  assertBytes(out, "utf8EncodeInto output");
  if (out.length < 3 * text.length) {
    throw new CryptoPrimitiveError("BAD_LENGTH", "utf8EncodeInto needs 3 bytes of output per code unit");
  }
  if (LONE_SURROGATE.test(text)) {
    throw new CryptoPrimitiveError("BAD_UTF8", "string contains an unpaired surrogate");
  }
  return encoder.encodeInto(text, out).written;
}

/** The string encoded by `bytes`; throws `BAD_UTF8` for anything that is not well-formed UTF-8. */
export function utf8Decode(bytes: Uint8Array): string {
  assertBytes(bytes, "utf8Decode input");
  try {
    return decoder.decode(bytes);
  } catch {
    throw new CryptoPrimitiveError("BAD_UTF8", "bytes are not valid UTF-8");
  }
}
