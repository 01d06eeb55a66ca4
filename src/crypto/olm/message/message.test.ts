import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { utf8Encode } from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import { decodeMessage, MESSAGE_MAC_LENGTH, messageLength, writeMessageBody } from "./message.ts";

// Byte layout from vodozemac's own encoding test (src/olm/messages/message.rs, `encode`):
// version 3, ratchet key field, chain index 2, ciphertext field, then the 8-byte MAC.
const RATCHET_KEY = utf8Encode("ratchetkeyhereprettyplease123456");
const VODOZEMAC_BODY = utf8Encode('\x03\n\x20ratchetkeyhereprettyplease123456\x10\x02"\nciphertext');
const VODOZEMAC_MESSAGE = utf8Encode(
  '\x03\n\x20ratchetkeyhereprettyplease123456\x10\x02"\nciphertextMACHEREE',
);

const isFormat = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

describe("Olm normal message", () => {
  it("encodes byte for byte as vodozemac's vector", () => {
    const ciphertext = utf8Encode("ciphertext");
    const out = new Uint8Array(messageLength(2, ciphertext.length));
    assert.equal(out.length, VODOZEMAC_MESSAGE.length);
    const macAt = writeMessageBody(out, 0, RATCHET_KEY, 2, ciphertext);
    assert.equal(macAt, out.length - MESSAGE_MAC_LENGTH);
    assert.deepEqual(out.subarray(0, macAt), VODOZEMAC_BODY);
  });

  it("decodes vodozemac's vector into subarrays of the input", () => {
    const m = decodeMessage(VODOZEMAC_MESSAGE);
    assert.deepEqual(m.ratchetKey, RATCHET_KEY);
    assert.equal(m.chainIndex, 2);
    assert.deepEqual(m.ciphertext, utf8Encode("ciphertext"));
    assert.deepEqual(m.macInput, VODOZEMAC_BODY);
    assert.deepEqual(m.mac, utf8Encode("MACHEREE"));
    assert.equal(m.ciphertext.buffer, VODOZEMAC_MESSAGE.buffer);
  });

  it("skips unknown fields and accepts any field order", () => {
    const reordered = Uint8Array.from([
      3,
      0x22,
      1,
      0xaa, // ciphertext
      0x28,
      0x05, // unknown varint field 5
      0x10,
      0x07, // chain index
      0x32,
      2,
      0,
      0, // unknown bytes field 6
      0x0a,
      32,
      ...RATCHET_KEY,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
    ]);
    const m = decodeMessage(reordered);
    assert.equal(m.chainIndex, 7);
    assert.deepEqual([...m.ciphertext], [0xaa]);
  });

  it("refuses wrong versions, short input, missing, duplicate or mistyped fields, bad key lengths", () => {
    assert.throws(() => decodeMessage(new Uint8Array(0)), isFormat("BAD_MESSAGE_FORMAT"));
    assert.throws(
      () => decodeMessage(Uint8Array.of(4, ...VODOZEMAC_MESSAGE.subarray(1))),
      isFormat("BAD_MESSAGE_VERSION"),
    );
    assert.throws(() => decodeMessage(Uint8Array.of(3, 1, 2, 3)), isFormat("BAD_MESSAGE_FORMAT"));
    const mac = [1, 2, 3, 4, 5, 6, 7, 8];
    const key = [0x0a, 32, ...RATCHET_KEY];
    const cases = [
      [3, 0x10, 1, 0x22, 1, 0, ...mac], // no ratchet key
      [3, ...key, 0x22, 1, 0, ...mac], // no chain index
      [3, ...key, 0x10, 1, ...mac], // no ciphertext
      [3, ...key, ...key, 0x10, 1, 0x22, 1, 0, ...mac], // duplicate key
      [3, 0x08, 1, 0x10, 1, 0x22, 1, 0, ...mac], // ratchet key as varint
      [3, ...key, 0x12, 1, 0, 0x22, 1, 0, ...mac], // chain index as bytes
      [3, 0x0a, 31, ...RATCHET_KEY.subarray(1), 0x10, 1, 0x22, 1, 0, ...mac], // 31-byte key
    ];
    for (const c of cases)
      assert.throws(() => decodeMessage(Uint8Array.from(c)), isFormat("BAD_MESSAGE_FORMAT"));
  });
});
