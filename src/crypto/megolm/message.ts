/**
 * The Megolm message wire format (megolm.md "Message format"), byte for byte as libolm writes it:
 *
 *   0x03 | 0x08 varint(message index) | 0x12 varint(length) ciphertext | MAC (8) | signature (64)
 *
 * The MAC is HMAC-SHA-256 over everything before it, truncated to 8 bytes; the Ed25519 signature
 * covers everything before it including the MAC. Decoding works on subarrays of the input.
 */
import { ED25519_SIGNATURE_LENGTH } from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";

/** Version 3: truncated 8-byte MAC (the only version libolm and Matrix clients send). */
export const MEGOLM_MESSAGE_VERSION = 3;
export const MEGOLM_MAC_LENGTH = 8;
const INDEX_TAG = 0x08; // field 1, varint
const CIPHERTEXT_TAG = 0x12; // field 2, length-delimited
const SUFFIX_LENGTH = MEGOLM_MAC_LENGTH + ED25519_SIGNATURE_LENGTH;

export interface DecodedMegolmMessage {
  readonly messageIndex: number;
  readonly ciphertext: Uint8Array;
  /** Offset of the MAC: the MAC covers [0, macOffset). */
  readonly macOffset: number;
}

function varintLength(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) n++;
  return n;
}

function writeVarint(out: Uint8Array, offset: number, value: number): number {
  let v = value;
  let o = offset;
  while (v >= 0x80) {
    out[o++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[o++] = v;
  return o;
}

/** The length of a whole message (MAC and signature included) with this index and ciphertext length. */
export function megolmMessageLength(messageIndex: number, ciphertextLength: number): number {
  return (
    1 + 1 + varintLength(messageIndex) + 1 + varintLength(ciphertextLength) + ciphertextLength + SUFFIX_LENGTH
  );
}

/**
 * Writes a message's version, index and ciphertext at the start of `out` (which holds at least
 * `megolmMessageLength` bytes) and returns the MAC offset; the caller writes the MAC then the
 * signature after it.
 */
export function writeMegolmMessage(out: Uint8Array, messageIndex: number, ciphertext: Uint8Array): number {
  out[0] = MEGOLM_MESSAGE_VERSION;
  out[1] = INDEX_TAG;
  let o = writeVarint(out, 2, messageIndex);
  out[o++] = CIPHERTEXT_TAG;
  o = writeVarint(out, o, ciphertext.length);
  out.set(ciphertext, o);
  return o + ciphertext.length;
}

/**
 * Lays out a message in a new buffer with room for the MAC and signature (left zero). Returns the
 * buffer and the MAC offset; the caller fills MAC then signature in place.
 */
export function encodeMegolmMessage(
  messageIndex: number,
  ciphertext: Uint8Array,
): { bytes: Uint8Array; macOffset: number } {
  const bytes = new Uint8Array(megolmMessageLength(messageIndex, ciphertext.length));
  return { bytes, macOffset: writeMegolmMessage(bytes, messageIndex, ciphertext) };
}

function malformed(reason: string): MegolmError {
  return new MegolmError("BAD_MESSAGE_FORMAT", `malformed Megolm message: ${reason}`);
}

/**
 * Where readVarint leaves the offset after the varint it read: a module variable rather than a
 * returned pair, since every decryption reads four varints and a pair each was garbage.
 */
let varintEnd = 0;

/** Reads a varint of at most 5 bytes whose value fits 32 bits; its end goes to `varintEnd`. */
function readVarint(buf: Uint8Array, offset: number, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    if (offset + i >= end) throw malformed("truncated varint");
    const byte = buf[offset + i]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      if (value > 0xffff_ffff) throw malformed("varint out of range");
      varintEnd = offset + i + 1;
      return value;
    }
    scale *= 128;
  }
  throw malformed("varint too long");
}

/**
 * Splits a raw message. Unknown protobuf fields of wire type 0 or 2 are skipped and a repeated
 * field keeps its last value, as libolm's decoder does; both known fields are required.
 */
export function decodeMegolmMessage(bytes: Uint8Array): DecodedMegolmMessage {
  if (bytes.length < 1 + SUFFIX_LENGTH) throw malformed("too short");
  if (bytes[0] !== MEGOLM_MESSAGE_VERSION) {
    throw new MegolmError("BAD_MESSAGE_VERSION", `unsupported Megolm message version ${bytes[0]}`);
  }
  const end = bytes.length - SUFFIX_LENGTH;
  let messageIndex = -1;
  let ciphertext: Uint8Array | undefined;
  let offset = 1;
  while (offset < end) {
    const key = readVarint(bytes, offset, end);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw malformed("protobuf field number 0");
    if (wireType === 0) {
      const value = readVarint(bytes, varintEnd, end);
      if (field === 1) messageIndex = value;
      offset = varintEnd;
    } else if (wireType === 2) {
      const length = readVarint(bytes, varintEnd, end);
      const start = varintEnd;
      if (length > end - start) throw malformed("field runs past the end");
      if (field === 2) ciphertext = bytes.subarray(start, start + length);
      offset = start + length;
    } else {
      throw malformed(`unsupported protobuf wire type ${wireType}`);
    }
  }
  if (messageIndex < 0) throw malformed("missing message index");
  if (ciphertext === undefined) throw malformed("missing ciphertext");
  return { messageIndex, ciphertext, macOffset: end };
}
