// Passphrase parameters a hostile server sets in a key description (policy: `passphraseWeakness`
// in src/crypto/secret-storage/passphrase.ts). Without a key check, weak parameters are refused
// before any derivation; with one, the key opens but nothing new is written under it; malformed
// ones are BAD_KEY_DESCRIPTION either way. Real keys (Element's 500 000 iterations and 32-character
// salt, a rust-sdk key with its check) still open.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { randomBytes } from "../../crypto/primitives/index.ts";
import { decodeRecoveryKey } from "../../crypto/recovery-key/index.ts";
import {
  encryptSecret,
  MAX_PASSPHRASE_ITERATIONS,
  MIN_PASSPHRASE_ITERATIONS,
  MIN_PASSPHRASE_SALT_LENGTH,
  type PassphraseInfo,
} from "../../crypto/secret-storage/index.ts";
import {
  buildKeyDescription,
  buildSecretContent,
  newSecretStorageKey,
  parseKeyDescription,
  type SecretStorageKeyDescription,
} from "./account-data.ts";
import { keyType } from "./names.ts";
import { code, mautrix } from "./test-support/fixtures.ts";
import { keyDescription, readSecret, unlockWithKey, unlockWithPassphrase } from "./unlock.ts";

const rust = (
  JSON.parse(
    readFileSync(new URL("../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
  ) as {
    rust_sdk_keys: { passphrase: { key_id: string; passphrase: string; content: Record<string, unknown> } };
  }
).rust_sdk_keys.passphrase;

const AES = "m.secret_storage.v1.aes-hmac-sha2";
const SALT = "IuLnH7S85YtZmkkBJKwNUKxWF42g9O1H"; // 32 characters, as Element makes them
const strong = { algorithm: "m.pbkdf2", salt: SALT, iterations: MIN_PASSPHRASE_ITERATIONS };
const KEY_ID = "hostile";

/** A key description's content without `iv` / `mac`, with `passphrase`. */
const unchecked = (passphrase: unknown) => ({ algorithm: AES, passphrase });
/** `content` without its key check. */
function stripCheck(content: Record<string, unknown>): Record<string, unknown> {
  const { iv: _iv, mac: _mac, ...rest } = content;
  return rest;
}

describe("secret storage: passphrase parameters from the server", () => {
  it("weak parameters without a key check are WEAK_PASSPHRASE_PARAMETERS; malformed ones BAD_KEY_DESCRIPTION", () => {
    const cases: [unknown, string][] = [
      [{ ...strong, iterations: 1 }, "WEAK_PASSPHRASE_PARAMETERS"],
      [{ ...strong, iterations: MIN_PASSPHRASE_ITERATIONS - 1 }, "WEAK_PASSPHRASE_PARAMETERS"],
      [{ ...strong, salt: "" }, "WEAK_PASSPHRASE_PARAMETERS"],
      [{ ...strong, salt: "s".repeat(MIN_PASSPHRASE_SALT_LENGTH - 1) }, "WEAK_PASSPHRASE_PARAMETERS"],
      [{ ...strong, iterations: 1, salt: "", bits: 256 }, "WEAK_PASSPHRASE_PARAMETERS"],
      [{ ...strong, bits: 128 }, "BAD_KEY_DESCRIPTION"],
      [{ ...strong, bits: 256.5 }, "BAD_KEY_DESCRIPTION"],
      [{ ...strong, iterations: MAX_PASSPHRASE_ITERATIONS + 1 }, "BAD_KEY_DESCRIPTION"],
      [{ ...strong, iterations: Number.MAX_SAFE_INTEGER + 2 }, "BAD_KEY_DESCRIPTION"],
      [{ ...strong, iterations: 500_000.5 }, "BAD_KEY_DESCRIPTION"],
      [{ ...strong, iterations: "500000" }, "BAD_KEY_DESCRIPTION"],
      [{ ...strong, iterations: -500_000 }, "BAD_KEY_DESCRIPTION"],
    ];
    for (const [passphrase, expected] of cases) {
      const content = unchecked(passphrase);
      assert.equal(
        code(() => parseKeyDescription(KEY_ID, content)),
        expected,
        JSON.stringify(passphrase),
      );
      const data = new Map<string, unknown>([[keyType(KEY_ID), content]]);
      assert.equal(
        code(() => keyDescription(data, KEY_ID)),
        expected,
        JSON.stringify(passphrase),
      );
    }
    // The floors themselves are not weak.
    const edge = { ...strong, salt: "s".repeat(MIN_PASSPHRASE_SALT_LENGTH) };
    assert.deepEqual(parseKeyDescription(KEY_ID, unchecked(edge)).passphrase, edge);
  });

  it("refuses before deriving: a passphrase no derivation would accept still gets WEAK_PASSPHRASE_PARAMETERS", () => {
    // Built by hand (not through parseKeyDescription): the unlock calls check again themselves.
    const description: SecretStorageKeyDescription = {
      keyId: KEY_ID,
      algorithm: AES,
      passphrase: { algorithm: "m.pbkdf2", salt: "", iterations: 1 },
    };
    // A lone surrogate is BAD_ARGUMENT from the derivation; this error comes first.
    assert.equal(
      code(() => unlockWithPassphrase(description, "\ud800")),
      "WEAK_PASSPHRASE_PARAMETERS",
    );
    assert.equal(
      code(() => unlockWithKey(description, randomBytes(32))),
      "WEAK_PASSPHRASE_PARAMETERS",
    );
  });

  it("Element's parameters without a check open with the passphrase", () => {
    const content = stripCheck(mautrix.key1.content); // 500 000 iterations, 32-character salt
    const key = unlockWithPassphrase(
      parseKeyDescription(mautrix.key1.key_id, content),
      mautrix.key1.passphrase,
    );
    assert.equal(key.check, "unverifiable");
    assert.equal(key.weakPassphrase, false);
    assert.deepEqual(key.key, decodeRecoveryKey(mautrix.key1.recovery_key));
    assert.ok(buildSecretContent("m.megolm_backup.v1", "c2VjcmV0", [key]).encrypted[key.keyId]);
  });

  it("a weak key proved by its check (rust-sdk's, 10 iterations) opens and reads, but nothing new is written under it", () => {
    const description = parseKeyDescription(rust.key_id, rust.content);
    const key = unlockWithPassphrase(description, rust.passphrase);
    assert.equal(key.check, "verified");
    assert.equal(key.weakPassphrase, true);
    assert.equal(
      code(() => unlockWithPassphrase(description, "It's a secret to nobody")),
      "WRONG_KEY",
    );
    const data = new Map<string, unknown>([
      [
        "m.megolm_backup.v1",
        { encrypted: { [key.keyId]: encryptSecret(key.key, "m.megolm_backup.v1", "c2VjcmV0") } },
      ],
    ]);
    assert.equal(readSecret(data, "m.megolm_backup.v1", key), "c2VjcmV0");
    const other = newSecretStorageKey();
    for (const keys of [[key], [other, key]]) {
      assert.equal(
        code(() => buildSecretContent("m.megolm_backup.v1", "bmV3", keys)),
        "WEAK_PASSPHRASE_PARAMETERS",
      );
    }
    // The same description with its check stripped proves nothing: refused.
    assert.equal(
      code(() => parseKeyDescription(rust.key_id, stripCheck(rust.content))),
      "WEAK_PASSPHRASE_PARAMETERS",
    );
  });

  it("no new key is described with weak parameters", () => {
    const key = randomBytes(32);
    const weak: PassphraseInfo[] = [
      { algorithm: "m.pbkdf2", salt: SALT, iterations: 1 },
      { algorithm: "m.pbkdf2", salt: "", iterations: MIN_PASSPHRASE_ITERATIONS },
    ];
    for (const passphrase of weak) {
      assert.equal(
        code(() => buildKeyDescription(key, { passphrase })),
        "WEAK_PASSPHRASE_PARAMETERS",
      );
      assert.equal(
        code(() => newSecretStorageKey({ key, passphrase })),
        "WEAK_PASSPHRASE_PARAMETERS",
      );
    }
    const made = newSecretStorageKey({
      key,
      passphrase: { algorithm: "m.pbkdf2", salt: SALT, iterations: MIN_PASSPHRASE_ITERATIONS },
    });
    assert.equal(unlockWithKey(parseKeyDescription(made.keyId, made.content), key).weakPassphrase, false);
  });
});
