/**
 * Base64 as Matrix uses it: unpadded on output; on input padded or unpadded, otherwise strict
 * (rules in base64-portable.ts).
 *
 * Every Olm/Megolm message, key and signature crosses this code. Measured on the 2-core build
 * machine (ops/s for 32 / 300 / 2000 bytes):
 *   encode  lookup tables 4.9M / 650k / 92k      Node Buffer 5.5M / 5.4M / 2.7M
 *   decode  lookup tables 7.5M / 549k / 109k     regex check + Buffer 4.0M / 545k / 182k
 * So encoding uses Node's native codec where a `Buffer` exists (Node, Bun, Deno compat) and the
 * lookup tables elsewhere; decoding always uses the lookup tables, which validate while they
 * decode and are as fast as native-plus-validation at the sizes Matrix sends.
 */
import { decode, encode, PAD, standard, urlSafe } from "./base64-portable.ts";
import { assertBytes } from "./errors.ts";

type Encoding = "base64" | "base64url";
type NativeEncoder = (bytes: Uint8Array, encoding: Encoding) => string;

const GlobalBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
const nativeEncoder: NativeEncoder | undefined =
  GlobalBuffer === undefined
    ? undefined
    : (bytes, encoding) =>
        GlobalBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(encoding);

function encodeNative(bytes: Uint8Array, encoding: Encoding, native: NativeEncoder): string {
  assertBytes(bytes, "base64 input");
  const text = native(bytes, encoding);
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === PAD) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** Unpadded standard base64 (`+/`), the encoding of every key, signature and message in Matrix. */
export const encodeBase64: (bytes: Uint8Array) => string =
  nativeEncoder !== undefined
    ? (bytes) => encodeNative(bytes, "base64", nativeEncoder)
    : (bytes) => encode(bytes, standard);

/** Standard base64, padded or unpadded. Throws `CryptoPrimitiveError` `BAD_BASE64` otherwise. */
export function decodeBase64(text: string): Uint8Array {
  return decode(text, standard);
}

/** Unpadded URL-safe base64 (`-_`), as used by e.g. JWK `k` fields of encrypted attachments. */
export const encodeBase64Url: (bytes: Uint8Array) => string =
  nativeEncoder !== undefined
    ? (bytes) => encodeNative(bytes, "base64url", nativeEncoder)
    : (bytes) => encode(bytes, urlSafe);

/** URL-safe base64, padded or unpadded. Throws `CryptoPrimitiveError` `BAD_BASE64` otherwise. */
export function decodeBase64Url(text: string): Uint8Array {
  return decode(text, urlSafe);
}

/** Both encoders by name, so tests can hold them to the same output. */
export const base64Implementations = {
  portable: {
    encodeBase64: (bytes: Uint8Array) => encode(bytes, standard),
    decodeBase64,
    encodeBase64Url: (bytes: Uint8Array) => encode(bytes, urlSafe),
    decodeBase64Url,
  },
  native:
    nativeEncoder === undefined
      ? undefined
      : { encodeBase64, decodeBase64, encodeBase64Url, decodeBase64Url },
};
