/**
 * The subset of the protobuf wire encoding that Olm messages use: unsigned varints and
 * length-delimited byte fields. Readers work on subarrays of the input (no copies).
 */
import { OlmError } from "../errors.ts";

/** Wire type 0 (varint) and 2 (length-delimited): the only two Olm uses. */
export const WIRE_VARINT = 0;
export const WIRE_BYTES = 2;

/** Chain indexes are 32-bit counters in libolm; larger values cannot come from a real sender. */
export const MAX_VARINT_VALUE = 0xffff_ffff;

/** Number of bytes `value` takes as a varint (value is a non-negative integer ≤ 2^53). */
export function varintLength(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes `value` as a varint at `offset`, returning the offset after it. */
export function writeVarint(out: Uint8Array, offset: number, value: number): number {
  let v = value;
  let o = offset;
  while (v >= 0x80) {
    out[o++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[o++] = v;
  return o;
}

/** Writes a length-delimited field (tag, length, bytes), returning the offset after it. */
export function writeBytesField(out: Uint8Array, offset: number, tag: number, bytes: Uint8Array): number {
  out[offset] = tag;
  const o = writeVarint(out, offset + 1, bytes.length);
  out.set(bytes, o);
  return o + bytes.length;
}

/** Encoded size of a length-delimited field with a one-byte tag. */
export function bytesFieldLength(length: number): number {
  return 1 + varintLength(length) + length;
}

/** One decoded field: varint fields carry `value`, byte fields carry `bytes` (a subarray). */
export type ProtobufField =
  | { readonly fieldNumber: number; readonly wireType: typeof WIRE_VARINT; readonly value: number }
  | { readonly fieldNumber: number; readonly wireType: typeof WIRE_BYTES; readonly bytes: Uint8Array };

/**
 * Reads every field of `buf` in order. Throws `OlmError("BAD_MESSAGE_FORMAT")` on truncated input,
 * overlong varints, values above `MAX_VARINT_VALUE` and wire types Olm never uses.
 */
export function readFields(buf: Uint8Array, visit: (field: ProtobufField) => void): void {
  let offset = 0;
  while (offset < buf.length) {
    const [key, afterKey] = readVarint(buf, offset);
    const fieldNumber = Math.floor(key / 8);
    const wireType = key % 8;
    if (fieldNumber === 0) throw new OlmError("BAD_MESSAGE_FORMAT", "protobuf field number 0");
    if (wireType === WIRE_VARINT) {
      const [value, next] = readVarint(buf, afterKey);
      visit({ fieldNumber, wireType, value });
      offset = next;
    } else if (wireType === WIRE_BYTES) {
      const [length, start] = readVarint(buf, afterKey);
      const end = start + length;
      if (end > buf.length) throw new OlmError("BAD_MESSAGE_FORMAT", "protobuf field runs past the end");
      visit({ fieldNumber, wireType, bytes: buf.subarray(start, end) });
      offset = end;
    } else {
      throw new OlmError("BAD_MESSAGE_FORMAT", `unsupported protobuf wire type ${wireType}`);
    }
  }
}

/** Reads one varint at `offset`; returns [value, offset after it]. */
export function readVarint(buf: Uint8Array, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  // 5 bytes carry 35 bits: enough for any value up to MAX_VARINT_VALUE.
  for (let i = 0; i < 5; i++) {
    const byte = buf[offset + i];
    if (byte === undefined) throw new OlmError("BAD_MESSAGE_FORMAT", "truncated varint");
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      if (value > MAX_VARINT_VALUE) throw new OlmError("BAD_MESSAGE_FORMAT", "varint out of range");
      return [value, offset + i + 1];
    }
    scale *= 128;
  }
  throw new OlmError("BAD_MESSAGE_FORMAT", "varint too long");
}
