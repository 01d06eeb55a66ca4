import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { hmacOverSha256 } from "./hmac-over-sha256.ts";

// OpenSSL is the oracle here; the composed functions run over OpenSSL's SHA-256 too, so only the
// composition is under test.
const { hmacSha256, hkdfSha256 } = hmacOverSha256((out, input) => {
  out.set(crypto.createHash("sha256").update(input).digest());
});
const opensslHmac = (k: Uint8Array, d: Uint8Array) =>
  new Uint8Array(crypto.createHmac("sha256", k).update(d).digest());

describe("HMAC and HKDF over a one-shot SHA-256", () => {
  it("match OpenSSL at the block and scratch-buffer boundaries", () => {
    for (const keyLength of [0, 1, 32, 63, 64, 65, 200]) {
      for (const dataLength of [0, 1, 63, 64, 65, 1023, 1024, 1025, 5000]) {
        const key = crypto.randomBytes(keyLength);
        const data = crypto.randomBytes(dataLength);
        assert.deepEqual(
          hmacSha256(key, data),
          opensslHmac(key, data),
          `key ${keyLength}, data ${dataLength}`,
        );
      }
    }
  });

  it("a long input between short ones leaves no trace in later results", () => {
    const key = crypto.randomBytes(32);
    const short = crypto.randomBytes(10);
    const before = hmacSha256(key, short);
    hmacSha256(crypto.randomBytes(100), crypto.randomBytes(900));
    assert.deepEqual(hmacSha256(key, short), before);
  });

  it("HKDF matches OpenSSL when the input or info outgrows the shared buffer", () => {
    for (const [ikmLength, infoLength] of [
      [2000, 5],
      [10, 1000],
      [1100, 1020],
    ] as const) {
      const ikm = crypto.randomBytes(ikmLength);
      const salt = crypto.randomBytes(16);
      const info = crypto.randomBytes(infoLength);
      const expected = new Uint8Array(crypto.hkdfSync("sha256", ikm, salt, info, 100));
      assert.deepEqual(hkdfSha256(ikm, salt, info, 100), expected);
    }
  });

  it("HKDF matches OpenSSL for random inputs and lengths", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.integer({ min: 1, max: 255 * 32 }),
        (ikm, salt, info, length) => {
          const expected = new Uint8Array(crypto.hkdfSync("sha256", ikm, salt, info, length));
          assert.deepEqual(hkdfSha256(ikm, salt, info, length), expected);
        },
      ),
      { numRuns: 80 },
    );
  });
});
