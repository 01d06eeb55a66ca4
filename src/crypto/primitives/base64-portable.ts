/**
 * Unpadded base64 (RFC 4648 §4 standard and §5 URL-safe alphabets), as Matrix and Olm use it.
 *
 * Pure TypeScript over lookup tables, identical on every runtime. Encoding works on 12-bit pairs
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
const INVALID = 0x80;
const PAD = 0x3d; // "="

interface Codec {
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

const standard = makeCodec(STANDARD);
const urlSafe = makeCodec(URL_SAFE);

function encode(bytes: Uint8Array, codec: Codec): string {
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

function bad(reason: string): CryptoPrimitiveError {
  // The input itself is never echoed: base64 strings in Keyroom are often keys.
  return new CryptoPrimitiveError("BAD_BASE64", `invalid base64: ${reason}`);
}

function decode(text: string, codec: Codec): Uint8Array {
  if (typeof text !== "string") throw bad("not a string");
  let len = text.length;
  // Padding is accepted only in its complete form (length a multiple of 4).
  if (len % 4 === 0 && len > 0 && text.charCodeAt(len - 1) === PAD) {
    len--;
    if (text.charCodeAt(len - 1) === PAD) len--;
  }
  const rem = len % 4;
  if (rem === 1) throw bad("impossible length");
  const whole = len - rem;
  const out = new Uint8Array((whole / 4) * 3 + (rem === 0 ? 0 : rem - 1));
  const values = codec.values;
  let flags = 0;
  let o = 0;
  let i = 0;
  for (; i < whole; i += 4) {
    const a = value(values, text.charCodeAt(i));
    const b = value(values, text.charCodeAt(i + 1));
    const c = value(values, text.charCodeAt(i + 2));
    const d = value(values, text.charCodeAt(i + 3));
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
  if ((flags & INVALID) !== 0) throw bad("character outside the alphabet or non-canonical trailing bits");
  return out;
}

function value(values: Uint8Array, code: number): number {
  return code < 128 ? values[code]! : INVALID;
}

/** Unpadded standard base64 (`+/`), the encoding of every key, signature and message in Matrix. */
export function encodeBase64(bytes: Uint8Array): string {
  return encode(bytes, standard);
}

/** Standard base64, padded or unpadded. Throws `CryptoPrimitiveError` `BAD_BASE64` otherwise. */
export function decodeBase64(text: string): Uint8Array {
  return decode(text, standard);
}

/** Unpadded URL-safe base64 (`-_`), as used by e.g. JWK `k` fields of encrypted attachments. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return encode(bytes, urlSafe);
}

/** URL-safe base64, padded or unpadded. Throws `CryptoPrimitiveError` `BAD_BASE64` otherwise. */
export function decodeBase64Url(text: string): Uint8Array {
  return decode(text, urlSafe);
}
