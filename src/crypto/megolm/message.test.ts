import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeMegolmMessage, encodeMegolmMessage, MEGOLM_MESSAGE_VERSION } from "./message.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe("Megolm message encoding", () => {
  it("lays out version, index, ciphertext and room for MAC and signature", () => {
    const ct = new Uint8Array(32).fill(0xaa);
    const { bytes, macOffset } = encodeMegolmMessage(300, ct);
    // 300 = 0xac 0x02 as a varint.
    assert.deepEqual([...bytes.subarray(0, 6)], [MEGOLM_MESSAGE_VERSION, 0x08, 0xac, 0x02, 0x12, 32]);
    assert.equal(macOffset, 6 + 32);
    assert.equal(bytes.length, macOffset + 8 + 64);
    const decoded = decodeMegolmMessage(bytes);
    assert.equal(decoded.messageIndex, 300);
    assert.deepEqual(decoded.ciphertext, ct);
    assert.equal(decoded.macOffset, macOffset);
  });

  it("round-trips the largest index", () => {
    const { bytes } = encodeMegolmMessage(0xffff_ffff, new Uint8Array(16));
    assert.equal(decodeMegolmMessage(bytes).messageIndex, 0xffff_ffff);
  });

  it("skips unknown fields and keeps the last value of a repeated one, like libolm", () => {
    const body = [MEGOLM_MESSAGE_VERSION, 0x08, 1, 0x18, 5, 0x22, 1, 0xff, 0x08, 7, 0x12, 2, 9, 9];
    const bytes = new Uint8Array([...body, ...new Uint8Array(72)]);
    const d = decodeMegolmMessage(bytes);
    assert.equal(d.messageIndex, 7);
    assert.deepEqual([...d.ciphertext], [9, 9]);
  });

  it("refuses malformed input with typed codes", () => {
    const suffix = new Uint8Array(72);
    const cases: [number[], string][] = [
      [[3], "BAD_MESSAGE_FORMAT"],
      [[4, 0x08, 1, 0x12, 0], "BAD_MESSAGE_VERSION"],
      [[3, 0x12, 0], "BAD_MESSAGE_FORMAT"], // no index
      [[3, 0x08, 1], "BAD_MESSAGE_FORMAT"], // no ciphertext
      [[3, 0x08, 0x80], "BAD_MESSAGE_FORMAT"], // truncated varint
      [[3, 0x08, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x12, 0], "BAD_MESSAGE_FORMAT"], // > 2^32
      [[3, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "BAD_MESSAGE_FORMAT"], // 6-byte varint
      [[3, 0x08, 1, 0x12, 5, 1], "BAD_MESSAGE_FORMAT"], // runs into the MAC
      [[3, 0x0d, 0, 0, 0, 0], "BAD_MESSAGE_FORMAT"], // wire type 5
      [[3, 0x00, 0], "BAD_MESSAGE_FORMAT"], // field 0
    ];
    for (const [body, code] of cases) {
      assert.equal(
        codeOf(() => decodeMegolmMessage(new Uint8Array([...body, ...suffix]))),
        code,
        `${body}`,
      );
    }
    assert.equal(
      codeOf(() => decodeMegolmMessage(new Uint8Array(72))),
      "BAD_MESSAGE_FORMAT",
    );
  });
});
