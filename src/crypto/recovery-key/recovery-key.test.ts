// Recovery keys: the published vectors (test/vectors/secret-storage/published.json, from the
// rust-sdk's tests) and fast-check properties of the decoder.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { base58 } from "@scure/base";
import fc from "fast-check";
import { RecoveryKeyError } from "./errors.ts";
import { decodeRecoveryKey, encodeRecoveryKey, MAX_RECOVERY_KEY_INPUT_LENGTH } from "./recovery-key.ts";

interface Vectors {
  recovery_keys: {
    valid: { text: string; key_hex: string; canonical?: boolean }[];
    invalid: { text: string; code: string }[];
  };
}
const vectors = JSON.parse(
  readFileSync(new URL("../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
) as Vectors;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RecoveryKeyError) return e.code;
    throw e;
  }
  return "no error";
}

describe("recovery keys (published vectors)", () => {
  it("decodes the rust-sdk's keys, whitespace anywhere", () => {
    assert.ok(vectors.recovery_keys.valid.length > 0, "the vector file holds valid keys");
    for (const v of vectors.recovery_keys.valid) assert.equal(hex(decodeRecoveryKey(v.text)), v.key_hex);
  });
  it("encodes into the groups of four the rust-sdk shows", () => {
    const canonical = vectors.recovery_keys.valid.filter((x) => x.canonical === true);
    assert.ok(canonical.length > 0, "the vector file holds a key in its canonical form");
    for (const v of canonical) {
      assert.equal(encodeRecoveryKey(new Uint8Array(Buffer.from(v.key_hex, "hex"))), v.text);
    }
  });
  it("refuses the broken ones with the right code", () => {
    assert.ok(vectors.recovery_keys.invalid.length > 0, "the vector file holds broken keys");
    for (const v of vectors.recovery_keys.invalid)
      assert.equal(
        code(() => decodeRecoveryKey(v.text)),
        v.code,
        v.text,
      );
  });
  it("refuses absurdly long input before decoding it, and non-strings", () => {
    assert.equal(
      code(() => decodeRecoveryKey("E".repeat(MAX_RECOVERY_KEY_INPUT_LENGTH + 1))),
      "BAD_LENGTH",
    );
    assert.equal(
      code(() => decodeRecoveryKey(42 as unknown as string)),
      "BAD_ARGUMENT",
    );
    assert.equal(
      code(() => encodeRecoveryKey(new Uint8Array(31))),
      "BAD_ARGUMENT",
    );
  });
  it("tells other whitespace apart from base58 errors (tabs and newlines are whitespace)", () => {
    const text = vectors.recovery_keys.valid[1]?.text ?? "";
    assert.equal(
      hex(decodeRecoveryKey(`\t${text.replaceAll(" ", "\n")}\r\n`)),
      vectors.recovery_keys.valid[1]?.key_hex,
    );
    assert.equal(
      code(() => decodeRecoveryKey(text.replace("E", "0"))),
      "BAD_BASE58",
    );
  });
});

describe("recovery key properties", () => {
  it("round-trips every 32-byte key, 48 characters in 12 groups", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        const text = encodeRecoveryKey(key);
        assert.match(text, /^Es[1-9A-HJ-NP-Za-km-z]{2}( [1-9A-HJ-NP-Za-km-z]{4}){11}$/);
        assert.deepEqual(decodeRecoveryKey(text), key);
        assert.deepEqual(decodeRecoveryKey(text.replaceAll(" ", "")), key);
      }),
      { numRuns: 300 },
    );
  });
  it("catches every single-byte corruption of the key or parity (parity is an XOR)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 2, max: 34 }),
        fc.integer({ min: 1, max: 255 }),
        (key, at, flip) => {
          const bytes = new Uint8Array(35);
          bytes.set([0x8b, 0x01]);
          bytes.set(key, 2);
          bytes[34] = bytes.subarray(0, 34).reduce((a, b) => a ^ b, 0);
          bytes[at]! ^= flip;
          // The corrupted bytes in base58: decode must say BAD_PARITY, never accept.
          const text = base58.encode(bytes);
          assert.equal(
            code(() => decodeRecoveryKey(text)),
            "BAD_PARITY",
          );
        },
      ),
      { numRuns: 200 },
    );
  });
  it("throws only RecoveryKeyError for any string", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.stringMatching(/^[1-9A-Za-z ]{0,70}$/)), (s) => {
        code(() => decodeRecoveryKey(s));
      }),
      { numRuns: 500 },
    );
  });
});
