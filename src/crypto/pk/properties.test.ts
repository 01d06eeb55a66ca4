// Property tests (fast-check): PkDecryption and the key/pickle readers throw only `PkError`,
// whatever arrives, and keep working afterwards.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { encodeBase64 } from "../primitives/index.ts";
import { PkError } from "./errors.ts";
import { PkDecryption, type PkDecryptionPickle } from "./pk-decryption.ts";
import { PkEncryption, type PkMessage } from "./pk-encryption.ts";

function onlyPkErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof PkError) return true;
    throw e;
  }
}

describe("PK encryption properties", () => {
  const recipient = PkDecryption.create();
  const good = new PkEncryption(recipient.publicKey).encrypt("backup payload");
  const b64 = fc.uint8Array({ maxLength: 80 }).map(encodeBase64);
  const field = fc.oneof(b64, fc.string({ maxLength: 60 }), fc.jsonValue());

  it("decrypt throws only PkError for random fields and random objects", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => onlyPkErrors(() => recipient.decrypt(v as unknown as PkMessage))),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(field, field, field, (ciphertext, mac, ephemeral) =>
        onlyPkErrors(() => recipient.decrypt({ ciphertext, mac, ephemeral } as PkMessage)),
      ),
      { numRuns: 300 },
    );
  });

  it("a replaced field fails with PkError (or, for the ciphertext only, decrypts to other bytes)", () => {
    fc.assert(
      fc.property(fc.constantFrom("ciphertext", "mac", "ephemeral"), b64, (name, value) => {
        fc.pre(value !== good[name]);
        try {
          recipient.decrypt({ ...good, [name]: value });
          // libolm's MAC covers no ciphertext, so only a ciphertext swap can get through.
          assert.equal(name, "ciphertext");
        } catch (e) {
          if (!(e instanceof PkError)) throw e;
        }
        assert.equal(recipient.decryptString(good), "backup payload");
      }),
      { numRuns: 300 },
    );
  });

  it("keys and pickles from random input throw only PkError", () => {
    fc.assert(
      fc.property(fc.oneof(b64, fc.string({ maxLength: 60 })), (key) =>
        onlyPkErrors(() => new PkEncryption(key)),
      ),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) =>
        onlyPkErrors(() => PkDecryption.fromPrivateKey(bytes)),
      ),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        onlyPkErrors(() => PkDecryption.fromPickle(v as unknown as PkDecryptionPickle));
        return onlyPkErrors(() =>
          PkDecryption.fromPickle({ version: 1, privateKey: v } as unknown as PkDecryptionPickle),
        );
      }),
      { numRuns: 200 },
    );
  });
});
