import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OlmError } from "../errors.ts";
import { decodePreKeyMessage, preKeyMessageLength, writePreKeyHeader } from "./prekey-message.ts";

const key = (b: number) => new Uint8Array(32).fill(b);
const isCode = (code: string) => (e: unknown) => e instanceof OlmError && e.code === code;

function build(inner: Uint8Array): Uint8Array {
  const out = new Uint8Array(preKeyMessageLength(inner.length));
  const at = writePreKeyHeader(out, key(1), key(2), key(3), inner.length);
  out.set(inner, at);
  assert.equal(at + inner.length, out.length);
  return out;
}

describe("Olm pre-key message", () => {
  it("lays out version 3, one-time key (0x0A), base key (0x12), identity key (0x1A), message (0x22)", () => {
    const inner = Uint8Array.from([9, 9, 9]);
    const bytes = build(inner);
    assert.deepEqual(
      [...bytes],
      [3, 0x0a, 32, ...key(1), 0x12, 32, ...key(2), 0x1a, 32, ...key(3), 0x22, 3, 9, 9, 9],
    );
    const m = decodePreKeyMessage(bytes);
    assert.deepEqual(m.oneTimeKey, key(1));
    assert.deepEqual(m.baseKey, key(2));
    assert.deepEqual(m.identityKey, key(3));
    assert.deepEqual(m.message, inner);
  });

  it("uses a multi-byte length for long inner messages", () => {
    const inner = new Uint8Array(300).fill(5);
    const m = decodePreKeyMessage(build(inner));
    assert.deepEqual(m.message, inner);
  });

  it("refuses bad versions, missing or short keys, duplicates and a missing inner message", () => {
    const good = build(Uint8Array.of(1));
    assert.throws(() => decodePreKeyMessage(new Uint8Array(0)), isCode("BAD_MESSAGE_FORMAT"));
    assert.throws(
      () => decodePreKeyMessage(Uint8Array.of(2, ...good.subarray(1))),
      isCode("BAD_MESSAGE_VERSION"),
    );
    assert.throws(() => decodePreKeyMessage(good.subarray(0, good.length - 3)), isCode("BAD_MESSAGE_FORMAT"));
    const cases = [
      [3, 0x12, 32, ...key(2), 0x1a, 32, ...key(3), 0x22, 1, 0],
      [3, 0x0a, 32, ...key(1), 0x12, 32, ...key(2), 0x1a, 32, ...key(3)],
      [3, 0x0a, 31, ...key(1).subarray(1), 0x12, 32, ...key(2), 0x1a, 32, ...key(3), 0x22, 1, 0],
      [3, 0x0a, 32, ...key(1), 0x0a, 32, ...key(1), 0x12, 32, ...key(2), 0x1a, 32, ...key(3), 0x22, 1, 0],
      [3, 0x08, 1, 0x12, 32, ...key(2), 0x1a, 32, ...key(3), 0x22, 1, 0],
    ];
    for (const c of cases)
      assert.throws(() => decodePreKeyMessage(Uint8Array.from(c)), isCode("BAD_MESSAGE_FORMAT"));
  });
});
