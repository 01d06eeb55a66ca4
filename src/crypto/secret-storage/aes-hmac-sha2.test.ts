import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decodeBase64, randomBytes } from "../primitives/index.ts";
import {
  checkKey,
  computeKeyCheck,
  decryptSecret,
  encryptSecret,
  MAX_SECRET_CIPHERTEXT_LENGTH,
  validateEncryptedSecret,
  validateKeyCheck,
} from "./aes-hmac-sha2.ts";
import { SecretStorageError } from "./errors.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SecretStorageError) return e.code;
    throw e;
  }
  return "no error";
}

describe("m.secret_storage.v1.aes-hmac-sha2", () => {
  const key = randomBytes(32);

  it("round-trips a secret and clears bit 63 of every IV", () => {
    for (let i = 0; i < 50; i++) {
      const enc = encryptSecret(key, "m.megolm_backup.v1", "c2VjcmV0");
      assert.equal((decodeBase64(enc.iv)[8] ?? 0) & 0x80, 0);
      assert.equal(decryptSecret(key, "m.megolm_backup.v1", enc), "c2VjcmV0");
    }
  });
  it("a new key check verifies with its key and says WRONG_KEY for any other", () => {
    const check = computeKeyCheck(key);
    validateKeyCheck(check);
    assert.equal(checkKey(key, check), "verified");
    assert.equal(
      code(() => checkKey(randomBytes(32), check)),
      "WRONG_KEY",
    );
  });
  it("an altered ciphertext or MAC is BAD_MAC; a malformed record is BAD_ENCRYPTED_SECRET", () => {
    const enc = encryptSecret(key, "name", "value");
    const flip = (b64: string) => {
      const b = decodeBase64(b64);
      b[0]! ^= 1;
      return Buffer.from(b).toString("base64");
    };
    assert.equal(
      code(() => decryptSecret(key, "name", { ...enc, ciphertext: flip(enc.ciphertext) })),
      "BAD_MAC",
    );
    assert.equal(
      code(() => decryptSecret(key, "name", { ...enc, mac: flip(enc.mac) })),
      "BAD_MAC",
    );
    // The IV is not under the MAC (as specified): a changed IV gives different plaintext bytes.
    assert.notEqual(
      (() => {
        try {
          return decryptSecret(key, "name", { ...enc, iv: flip(enc.iv) });
        } catch {
          return "refused";
        }
      })(),
      "value",
    );
    for (const bad of [
      null,
      [],
      "x",
      { ...enc, iv: 5 },
      { ...enc, mac: "!!" },
      { iv: enc.iv, mac: enc.mac },
    ]) {
      assert.equal(
        code(() => decryptSecret(key, "name", bad)),
        "BAD_ENCRYPTED_SECRET",
      );
    }
    const long = { ...enc, ciphertext: "A".repeat(MAX_SECRET_CIPHERTEXT_LENGTH + 4) };
    assert.equal(
      code(() => validateEncryptedSecret(long)),
      "BAD_ENCRYPTED_SECRET",
    );
  });
  it("refuses bad arguments with BAD_ARGUMENT (lone surrogates included)", () => {
    assert.equal(
      code(() => encryptSecret(new Uint8Array(16), "n", "v")),
      "BAD_ARGUMENT",
    );
    assert.equal(
      code(() => encryptSecret(key, "\ud800", "v")),
      "BAD_ARGUMENT",
    );
    assert.equal(
      code(() => encryptSecret(key, "n", "\udc00")),
      "BAD_ARGUMENT",
    );
    assert.equal(
      code(() => encryptSecret(key, "n", "v", new Uint8Array(8))),
      "BAD_ARGUMENT",
    );
  });
  it("decryptSecret and checkKey throw only SecretStorageError for anything", () => {
    const b64 = fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b).toString("base64"));
    const field = fc.oneof(b64, fc.string({ maxLength: 40 }), fc.jsonValue());
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.record({ iv: field, ciphertext: field, mac: field })),
        (value) => {
          code(() => decryptSecret(key, "n", value));
          code(() => checkKey(key, (typeof value === "object" && value !== null ? value : {}) as object));
        },
      ),
      { numRuns: 400 },
    );
  });
});
