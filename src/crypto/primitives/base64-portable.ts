/**
 * Unpadded base64 (RFC 4648 §4 standard and §5 URL-safe alphabets), as Matrix and Olm use it:
 * the portable implementation, pure TypeScript over lookup tables, used where there is no Node
 * `Buffer` (base64.ts picks). Encoding works on 12-bit pairs
 * (two output characters per table hit); decoding looks each character up in a 128-entry table
 * whose invalid entries have bit 7 set, so validity is checked once per four characters.
 *
 * Decoding is strict in the way vodozemac's is: padding is optional but, if present, must be
 * complete; any character outside the alphabet, an impossible length (4n+1), or non-zero
 * leftover bits in the last character is `BAD_BASE64`. So every byte string has exactly one
 * unpadded encoding, and decode(encode(x)) and encode(decode(s)) round-trip.
 */
import { assertBytes, CryptoPrimitiveError } from "./errors.ts";

const STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
export const INVALID = 0x80;
export const PAD = 0x3d; // "="

export interface Codec {
  /** 4096 two-character strings, indexed by 12 bits of input. */
  readonly pairs: readonly string[];
  readonly chars: readonly string[];
  /** ASCII code → 6-bit value, or INVALID. */
  readonly values: Uint8Array;
}

function makeCodec(alphabet: string): Codec {
  const chars = alphabet.split("");
  const pairs: string[] = new Array(4096);
  for (let i = 0; i < 4096; i++) pairs[i] = chars[i >> 6]! + chars[i & 63]!;
  const values = new Uint8Array(128).fill(INVALID);
  for (let i = 0; i < 64; i++) values[alphabet.charCodeAt(i)] = i;
  return { pairs, chars, values };
}

export const standard: Codec = makeCodec(STANDARD);
export const urlSafe: Codec = makeCodec(URL_SAFE);

export function encode(bytes: Uint8Array, codec: Codec): string {
  assertBytes(bytes, "base64 input");
  const { pairs, chars } = codec;
  const n = bytes.length;
  const whole = n - (n % 3);
  let out = "";
  let i = 0;
  for (; i < whole; i += 3) {
    const t = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += pairs[t >> 12]! + pairs[t & 0xfff]!;
  }
  if (n - whole === 1) {
    const t = bytes[i]!;
    out += chars[t >> 2]! + chars[(t & 0x03) << 4]!;
  } else if (n - whole === 2) {
    const t = (bytes[i]! << 8) | bytes[i + 1]!;
    out += pairs[t >> 4]! + chars[(t & 0x0f) << 2]!;
  }
  return out;
}

export function bad(reason: string): CryptoPrimitiveError {
  // The input itself is never echoed: base64 strings in Keyroom are often keys.
  return new CryptoPrimitiveError("BAD_BASE64", `invalid base64: ${reason}`);
}

/**
 * The shape of `text` as base64: its characters in whole groups of four (`whole`), those left
 * (`rem`, 0, 2 or 3) before any padding, and the byte length they decode to.
 */
export function decodedShape(text: string): { whole: number; rem: number; length: number } {
  let len = text.length;
  // Padding is accepted only in its complete form (length a multiple of 4).
  if (len % 4 === 0 && len > 0 && text.charCodeAt(len - 1) === PAD) {
    len--;
    if (text.charCodeAt(len - 1) === PAD) len--;
  }
  const rem = len % 4;
  if (rem === 1) throw bad("impossible length");
  const whole = len - rem;
  return { whole, rem, length: (whole / 4) * 3 + (rem === 0 ? 0 : rem - 1) };
}

/** Decodes `text`; into a view of `into` when given and large enough, otherwise into a new array. */
export function decode(text: string, codec: Codec, into?: Uint8Array): Uint8Array {
  if (typeof text !== "string") throw bad("not a string");
  const { whole, rem, length } = decodedShape(text);
  const out = into !== undefined && length <= into.length ? into.subarray(0, length) : new Uint8Array(length);
  const values = codec.values;
  // Any char code >= 128 sets a bit outside 0x7f in `high`; table hits for invalid ASCII set
  // INVALID in `flags`. Both are checked once at the end, so the loop has no branches.
  let flags = 0;
  let high = 0;
  let o = 0;
  let i = 0;
  for (; i < whole; i += 4) {
    const ca = text.charCodeAt(i);
    const cb = text.charCodeAt(i + 1);
    const cc = text.charCodeAt(i + 2);
    const cd = text.charCodeAt(i + 3);
    high |= ca | cb | cc | cd;
    const a = values[ca & 0x7f]!;
    const b = values[cb & 0x7f]!;
    const c = values[cc & 0x7f]!;
    const d = values[cd & 0x7f]!;
    flags |= a | b | c | d;
    const t = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = t >> 16;
    out[o++] = t >> 8;
    out[o++] = t;
  }
  if (rem === 2) {
    const a = value(values, text.charCodeAt(i));
    const b = value(values, text.charCodeAt(i + 1));
    flags |= a | b;
    if ((b & 0x0f) !== 0) flags |= INVALID;
    out[o] = (a << 2) | (b >> 4);
  } else if (rem === 3) {
    const a = value(values, text.charCodeAt(i));
    const b = value(values, text.charCodeAt(i + 1));
    const c = value(values, text.charCodeAt(i + 2));
    flags |= a | b | c;
    if ((c & 0x03) !== 0) flags |= INVALID;
    const t = (a << 10) | (b << 4) | (c >> 2);
    out[o++] = t >> 8;
    out[o] = t;
  }
  if ((flags & INVALID) !== 0 || (high & ~0x7f) !== 0) {
    throw bad("character outside the alphabet or non-canonical trailing bits");
  }
  return out;
}

export function value(values: Uint8Array, code: number): number {
  return code < 128 ? values[code]! : INVALID;
}
