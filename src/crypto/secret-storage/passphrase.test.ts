import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SecretStorageError } from "./errors.ts";
import {
  DEFAULT_PASSPHRASE_ITERATIONS,
  deriveKeyFromPassphrase,
  deriveKeyFromPassphraseWithProgress,
  MAX_PASSPHRASE_ITERATIONS,
  MIN_PASSPHRASE_ITERATIONS,
  MIN_PASSPHRASE_SALT_LENGTH,
  newPassphraseInfo,
  type PassphraseInfo,
  parsePassphraseInfo,
  passphraseWeakness,
  randomAlphanumeric,
} from "./passphrase.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SecretStorageError) return e.code;
    throw e;
  }
  return "no error";
}

describe("m.pbkdf2 passphrase keys", () => {
  it("new parameters: 500 000 iterations, a 32-character alphanumeric salt", () => {
    const info = newPassphraseInfo();
    assert.equal(info.iterations, DEFAULT_PASSPHRASE_ITERATIONS);
    assert.match(info.salt, /^[A-Za-z0-9]{32}$/);
    assert.notEqual(newPassphraseInfo().salt, info.salt);
    assert.match(randomAlphanumeric(100), /^[A-Za-z0-9]{100}$/);
    assert.equal(passphraseWeakness(info), undefined);
    assert.equal(newPassphraseInfo(MIN_PASSPHRASE_ITERATIONS + 1).iterations, MIN_PASSPHRASE_ITERATIONS + 1);
  });
  it("new parameters are never weak: fewer iterations than the floor are BAD_ARGUMENT", () => {
    for (const iterations of [1, 1000, MIN_PASSPHRASE_ITERATIONS - 1, 1.5, MAX_PASSPHRASE_ITERATIONS + 1]) {
      assert.equal(
        code(() => newPassphraseInfo(iterations)),
        "BAD_ARGUMENT",
        String(iterations),
      );
    }
  });
  it("weak parameters: fewer iterations than 500 000, or a salt shorter than 16 characters", () => {
    assert.equal(MIN_PASSPHRASE_ITERATIONS, 500_000);
    assert.equal(MIN_PASSPHRASE_SALT_LENGTH, 16);
    const element: PassphraseInfo = {
      algorithm: "m.pbkdf2",
      salt: "y863BOoqOadgDp8S3FtHXikDJEalsQ7d",
      iterations: 500_000,
    };
    assert.equal(passphraseWeakness(element), undefined);
    assert.equal(passphraseWeakness({ ...element, salt: "s".repeat(16) }), undefined);
    assert.match(passphraseWeakness({ ...element, iterations: 1 }) ?? "", /iterations/);
    assert.match(passphraseWeakness({ ...element, iterations: 499_999 }) ?? "", /iterations/);
    assert.match(passphraseWeakness({ ...element, salt: "" }) ?? "", /salt/);
    assert.match(passphraseWeakness({ ...element, salt: "s".repeat(15) }) ?? "", /salt/);
  });
  it("the stepped derivation reports rising progress and gives the one-shot key", async () => {
    // Few iterations to keep the test short: derivation itself takes any (a key check proves them).
    const info: PassphraseInfo = {
      algorithm: "m.pbkdf2",
      salt: "a salt for the progress test",
      iterations: 25,
    };
    const seen: number[] = [];
    let yields = 0;
    const key = await deriveKeyFromPassphraseWithProgress("pass phrase", info, {
      onProgress: (f) => seen.push(f),
      yieldControl: async () => {
        yields++;
      },
      stepIterations: 10,
    });
    assert.deepEqual(key, deriveKeyFromPassphrase("pass phrase", info));
    assert.deepEqual(seen, [0, 0.4, 0.8, 1]);
    assert.equal(yields, 2);
  });
  it("refuses malformed or hostile passphrase records with BAD_KEY_DESCRIPTION", () => {
    const ok = { algorithm: "m.pbkdf2", salt: "s", iterations: 5 };
    assert.deepEqual(parsePassphraseInfo(ok), ok);
    assert.deepEqual(parsePassphraseInfo({ ...ok, bits: 256 }), { ...ok, bits: 256 });
    for (const bad of [
      null,
      [],
      { ...ok, algorithm: "m.argon2" },
      { ...ok, salt: 3 },
      { ...ok, salt: "\ud800" },
      { ...ok, iterations: 0 },
      { ...ok, iterations: 1.5 },
      { ...ok, iterations: "5" },
      { ...ok, iterations: MAX_PASSPHRASE_ITERATIONS + 1 },
      { ...ok, bits: 128 },
    ]) {
      assert.equal(
        code(() => parsePassphraseInfo(bad)),
        "BAD_KEY_DESCRIPTION",
        JSON.stringify(bad),
      );
    }
    assert.equal(
      code(() => deriveKeyFromPassphrase("\udfff", ok as never)),
      "BAD_ARGUMENT",
    );
  });
  it("parsePassphraseInfo throws only SecretStorageError for any JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        code(() => parsePassphraseInfo(value));
      }),
      { numRuns: 300 },
    );
  });
});
