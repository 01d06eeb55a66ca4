import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OlmError } from "../errors.ts";
import {
  bytesFieldLength,
  MAX_VARINT_VALUE,
  type ProtobufField,
  readFields,
  readVarint,
  varintLength,
  writeBytesField,
  writeVarint,
} from "./protobuf-varint.ts";

function encode(value: number): number[] {
  const out = new Uint8Array(varintLength(value));
  assert.equal(writeVarint(out, 0, value), out.length);
  return [...out];
}

describe("protobuf varints", () => {
  it("encodes as protobuf does (7 bits per byte, little-endian, high bit = more)", () => {
    assert.deepEqual(encode(0), [0]);
    assert.deepEqual(encode(1), [1]);
    assert.deepEqual(encode(127), [0x7f]);
    assert.deepEqual(encode(128), [0x80, 0x01]);
    assert.deepEqual(encode(300), [0xac, 0x02]);
    assert.deepEqual(encode(MAX_VARINT_VALUE), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  it("round-trips and reports the offset after the varint", () => {
    for (const v of [0, 1, 127, 128, 2000, 16383, 16384, 2 ** 28, MAX_VARINT_VALUE]) {
      const bytes = Uint8Array.from([0xee, ...encode(v), 0xee]);
      assert.deepEqual(readVarint(bytes, 1), [v, bytes.length - 1]);
    }
  });

  it("refuses truncated, overlong and out-of-range varints with OlmError", () => {
    const bad = [
      [],
      [0x80],
      [0xff, 0xff],
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
      [0xff, 0xff, 0xff, 0xff, 0x10],
    ];
    for (const b of bad) {
      assert.throws(
        () => readVarint(Uint8Array.from(b), 0),
        (e) => e instanceof OlmError && e.code === "BAD_MESSAGE_FORMAT",
      );
    }
  });
});

describe("protobuf fields", () => {
  it("writes a length-delimited field and reads it back as a subarray", () => {
    const payload = new Uint8Array(200).fill(7);
    const out = new Uint8Array(bytesFieldLength(200) + 2);
    const end = writeBytesField(out, 0, 0x22, payload);
    out[end] = 0x10;
    out[end + 1] = 5;
    const fields: ProtobufField[] = [];
    readFields(out, (f) => fields.push(f));
    assert.equal(fields.length, 2);
    const [a, b] = fields;
    assert.ok(a?.wireType === 2 && b?.wireType === 0);
    assert.equal(a.fieldNumber, 4);
    assert.deepEqual(a.bytes, payload);
    assert.equal(a.bytes.buffer, out.buffer, "no copy");
    assert.deepEqual(b, { fieldNumber: 2, wireType: 0, value: 5 });
  });

  it("refuses fields that run past the end, field number 0 and unused wire types", () => {
    for (const b of [
      [0x22, 0x05, 1, 2],
      [0x02, 0x00],
      [0x0d, 1, 2, 3, 4],
      [0x09, 1, 2, 3, 4, 5, 6, 7, 8],
      [0x0b],
      [0x22],
    ]) {
      assert.throws(
        () => readFields(Uint8Array.from(b), () => {}),
        (e) => e instanceof OlmError && e.code === "BAD_MESSAGE_FORMAT",
      );
    }
  });
});
