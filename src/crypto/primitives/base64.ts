/**
 * Base64 as Matrix uses it: unpadded on output; on input padded or unpadded, otherwise strict
 * (rules in base64-portable.ts).
 *
 * Every Olm/Megolm message, key and signature crosses this code. Measured on the 2-core build
 * machine (ops/s for 32 / 300 / 2000 bytes):
 *   encode  lookup tables 4.9M / 650k / 92k      Node Buffer 5.5M / 5.4M / 2.7M
 *   decode  lookup tables 7.5M / 549k / 109k     regex check + Buffer 4.0M / 545k / 182k
 * So encoding uses Node's native codec where a `Buffer` exists (Node, Bun, Deno compat) and the
 * lookup tables elsewhere. Decoding uses the lookup tables for short strings (keys, signatures,
 * Olm messages; see NATIVE_DECODE_FROM; a Megolm decryption's message goes through Node's decoder
 * into its scratch, see decodeBase64Scratch) and, where a `Buffer` exists, Node's decoder for long ones (pickles, sealed store
 * values, export files), checked by re-encoding: CPU µs per decode, 150 / 1000 / 3000 / 4M bytes,
 * lookup tables 0.98 / 3.96 / 8.52 / 16 700, Buffer + re-encode check 0.55 / 1.16 / 2.29 / 4 100.
 */
import { bad, decode, decodedShape, encode, PAD, standard, urlSafe } from "./base64-portable.ts";
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

type NativeDecoder = (unpadded: string, encoding: Encoding) => Uint8Array | undefined;

/**
 * Node's decoder skips characters outside the alphabet and takes either alphabet, so its output is
 * kept only when re-encoding it gives the input back: exactly the canonical unpadded strings pass,
 * the same set the lookup tables accept.
 */
const nativeDecoder: NativeDecoder | undefined =
  GlobalBuffer === undefined || nativeEncoder === undefined
    ? undefined
    : (unpadded, encoding) => {
        const rem = unpadded.length % 4;
        if (rem === 1) return undefined;
        // A plain array the caller owns (a Buffer may be a view into Node's shared pool).
        const out = new Uint8Array((unpadded.length - rem) * 0.75 + (rem === 0 ? 0 : rem - 1));
        const written = GlobalBuffer.from(out.buffer).write(unpadded, encoding);
        if (written !== out.length) return undefined;
        return encodeNative(out, encoding, nativeEncoder) === unpadded ? out : undefined;
      };

/**
 * Shorter strings decode through the lookup tables. In a loop the two are level near 330 bytes
 * (1.24 µs tables, 1.21 µs Node); between other native work, where messages are decoded (an Olm
 * session set-up after its X25519s, a Megolm decryption after its signature check), Node's
 * decoder costs about 5 µs more and the tables about 1: after an X25519, 100 / 330 / 700 / 1500
 * bytes cost 6.5 / 6.4 / 6.5 / 8.0 µs through Node against 1.7 / 2.5 / 4.5 / 6.7 µs through the
 * tables (CPU time, 15 alternating rounds, minima; 2-core Xeon). So the tables take everything up
 * to 1024 characters (768 bytes), where in a tight loop they lose at most about 2 µs.
 */
const NATIVE_DECODE_FROM = 1024;

function decodeNative(text: string, encoding: Encoding, native: NativeDecoder): Uint8Array {
  if (typeof text !== "string") throw bad("not a string");
  let len = text.length;
  // Padding is accepted only in its complete form (length a multiple of 4).
  if (len % 4 === 0 && len > 0 && text.charCodeAt(len - 1) === PAD) {
    len--;
    if (text.charCodeAt(len - 1) === PAD) len--;
  }
  const out = native(len === text.length ? text : text.slice(0, len), encoding);
  if (out === undefined) throw bad("character outside the alphabet or not canonical");
  return out;
}

/** Unpadded standard base64 (`+/`), the encoding of every key, signature and message in Matrix. */
export const encodeBase64: (bytes: Uint8Array) => string =
  nativeEncoder !== undefined
    ? (bytes) => encodeNative(bytes, "base64", nativeEncoder)
    : (bytes) => encode(bytes, standard);

/** Standard base64, padded or unpadded. Throws `CryptoPrimitiveError` `BAD_BASE64` otherwise. */
export const decodeBase64: (text: string) => Uint8Array =
  nativeDecoder !== undefined
    ? (text) =>
        typeof text === "string" && text.length >= NATIVE_DECODE_FROM
          ? decodeNative(text, "base64", nativeDecoder)
          : decode(text, standard)
    : (text) => decode(text, standard);

/**
 * The scratch decoder through Node's codec, for the strings that fit the scratch: Node writes the
 * bytes into a Buffer over the scratch (made once per scratch), and they are kept only when they
 * encode back to the input (one encoding of all the bytes, compared as one string: the input is it,
 * or it without the padding Node adds to a partial group), so exactly the strings the lookup
 * tables accept pass, with the same bytes. A Megolm message (~380 characters) costs 0.29 µs this
 * way against 1.15 µs through the tables in a loop of decodes alone; inside a decryption it saved
 * ~0.5 µs a message (CPU time, alternating batches, the signature check left out so the rest could
 * be seen; 2-core EPYC, Node 20). One encoding rather than the whole groups and the partial group
 * apart: 0.52 -> 0.41 µs a Megolm message in a loop. (`startsWith` in place of the slice compare
 * cost 1.7 µs.) Undefined where there is no `Buffer`, or when the bytes do not fit (the caller
 * decodes elsewhere then).
 */
let scratchView: { scratch: Uint8Array; buffer: Buffer } | undefined;

function decodeScratchNative(
  text: string,
  scratch: Uint8Array,
  NodeBuffer: typeof Buffer,
): Uint8Array | undefined {
  const { whole, rem, length } = decodedShape(text);
  if (length > scratch.length) return undefined;
  let view = scratchView;
  if (view === undefined || view.scratch !== scratch) {
    view = { scratch, buffer: NodeBuffer.from(scratch.buffer, scratch.byteOffset, scratch.byteLength) };
    scratchView = view;
  }
  const buf = view.buffer;
  // Node skips characters outside the alphabet and takes either alphabet: the re-encoding below
  // refuses every such text (and whatever Node wrote stays in the caller's scratch only).
  const written = buf.write(text, 0, length, "base64");
  // Node pads a last partial group: the text must be that encoding, or it without the padding.
  const encoded = written === length ? buf.toString("base64", 0, length) : "";
  const ok =
    encoded === text || (rem !== 0 && encoded.length === whole + 4 && encoded.slice(0, whole + rem) === text);
  if (!ok) throw bad("character outside the alphabet or non-canonical trailing bits");
  return scratch.subarray(0, length);
}

/**
 * `decodeBase64` into a view of `scratch` when the bytes fit (a new array otherwise), for a caller
 * that is done with them before it decodes again: a Megolm decryption reads its message's bytes
 * only until it returns, and a new array for each was garbage off V8's heap. Same refusals.
 */
export function decodeBase64Scratch(text: string, scratch: Uint8Array): Uint8Array {
  assertBytes(scratch, "base64 scratch");
  if (typeof text !== "string") throw bad("not a string");
  if (GlobalBuffer !== undefined)
    return decodeScratchNative(text, scratch, GlobalBuffer) ?? decodeBase64(text);
  return text.length < NATIVE_DECODE_FROM ? decode(text, standard, scratch) : decodeBase64(text);
}

/** Unpadded URL-safe base64 (`-_`), as used by e.g. JWK `k` fields of encrypted attachments. */
export const encodeBase64Url: (bytes: Uint8Array) => string =
  nativeEncoder !== undefined
    ? (bytes) => encodeNative(bytes, "base64url", nativeEncoder)
    : (bytes) => encode(bytes, urlSafe);

/** URL-safe base64, padded or unpadded. Throws `CryptoPrimitiveError` `BAD_BASE64` otherwise. */
export const decodeBase64Url: (text: string) => Uint8Array =
  nativeDecoder !== undefined
    ? (text) =>
        typeof text === "string" && text.length >= NATIVE_DECODE_FROM
          ? decodeNative(text, "base64url", nativeDecoder)
          : decode(text, urlSafe)
    : (text) => decode(text, urlSafe);

/** Both encoders by name, so tests can hold them to the same output. */
export const base64Implementations = {
  portable: {
    encodeBase64: (bytes: Uint8Array) => encode(bytes, standard),
    decodeBase64: (text: string) => decode(text, standard),
    encodeBase64Url: (bytes: Uint8Array) => encode(bytes, urlSafe),
    decodeBase64Url: (text: string) => decode(text, urlSafe),
  },
  /** Node's codec at every length (decodeBase64 uses it only for long strings). */
  native:
    nativeEncoder === undefined || nativeDecoder === undefined
      ? undefined
      : {
          encodeBase64,
          decodeBase64: (text: string) => decodeNative(text, "base64", nativeDecoder),
          encodeBase64Url,
          decodeBase64Url: (text: string) => decodeNative(text, "base64url", nativeDecoder),
        },
};

/** Standard base64 with whitespace anywhere and optional padding at the end (armoured files). */
const ARMOURED_BASE64 = /^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/;

/**
 * Standard base64 spread over lines (whitespace anywhere, padding optional), as in key export
 * files. Checked for the alphabet in one pass; where Node's decoder exists it decodes the text as
 * it is (it skips the whitespace), instead of building a copy without it and re-encoding the
 * result to check it, which cost about twice as much on a 70 MB export. The trailing bits of the
 * last character are not checked: the callers authenticate the decoded bytes (the file's MAC).
 * Throws `CryptoPrimitiveError` `BAD_BASE64` otherwise.
 */
export function decodeArmouredBase64(text: string): Uint8Array {
  if (typeof text !== "string" || !ARMOURED_BASE64.test(text)) throw bad("not base64 text");
  if (GlobalBuffer === undefined) return decodeBase64(text.replace(/\s+/g, ""));
  const decoded = GlobalBuffer.from(text, "base64");
  // Short results may sit in Node's shared pool: copied. Long ones have an ArrayBuffer of their own
  // (sized for the text, whitespace included), which the caller gets without a second copy.
  return decoded.byteLength < GlobalBuffer.poolSize
    ? new Uint8Array(decoded)
    : new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
}
