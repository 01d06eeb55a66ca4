// Property tests (fast-check): SAS throws only `SasError` for any key or argument, both sides always
// agree, and MAC verification answers with a boolean for any received value.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { encodeBase64 } from "../primitives/index.ts";
import { SasError } from "./errors.ts";
import { Sas } from "./sas.ts";
import { sasDecimals, sasEmojiIndexes } from "./short-auth-string.ts";

function onlySasErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof SasError) return true;
    throw e;
  }
}

describe("SAS properties", () => {
  it("setTheirPublicKey throws only SasError for random keys", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 40 }).map(encodeBase64), fc.string({ maxLength: 50 })),
        (key) => onlySasErrors(() => Sas.create().setTheirPublicKey(key)),
      ),
      { numRuns: 200 },
    );
  });

  it("both sides agree on bytes and MACs for any info and input, and verifyMac is total", () => {
    const a = Sas.create();
    const b = Sas.create();
    a.setTheirPublicKey(b.publicKey);
    b.setTheirPublicKey(a.publicKey);
    fc.assert(
      fc.property(
        fc.string({ maxLength: 80 }),
        fc.string({ maxLength: 80 }),
        fc.string({ maxLength: 60 }),
        (info, input, junk) => {
          const ok = (fn: () => void): void => {
            try {
              fn();
            } catch (e) {
              // Lone surrogates have no UTF-8 form: refused, with the typed error.
              if (!(e instanceof SasError && e.code === "BAD_ARGUMENT")) throw e;
            }
          };
          ok(() => assert.deepEqual(a.generateBytes(info, 6), b.generateBytes(info, 6)));
          ok(() => {
            for (const method of ["hkdf-hmac-sha256.v2", "hkdf-hmac-sha256"] as const) {
              const mac = a.calculateMacWith(method, input, info);
              assert.ok(b.verifyMac(method, input, info, mac));
              assert.equal(typeof b.verifyMac(method, input, info, junk), "boolean");
            }
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("decimals stay in [1000, 9191] and emoji indexes in [0, 63]", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (bytes) => {
        for (const d of sasDecimals(bytes)) assert.ok(d >= 1000 && d <= 9191);
        const idx = sasEmojiIndexes(bytes);
        assert.equal(idx.length, 7);
        for (const i of idx) assert.ok(Number.isInteger(i) && i >= 0 && i < 64);
        // The 42 bits read back give the first 5 bytes and the top 2 bits of the sixth.
        let bits = 0n;
        for (const i of idx) bits = (bits << 6n) | BigInt(i);
        let expected = 0n;
        for (const byte of bytes) expected = (expected << 8n) | BigInt(byte);
        assert.equal(bits, expected >> 6n);
      }),
      { numRuns: 300 },
    );
  });
});
