// Recovery keys, m.pbkdf2 passphrase keys and m.secret_storage.v1.aes-hmac-sha2 against
// matrix-js-sdk's own implementation (its crypto-api and secret-storage helpers, WebCrypto based),
// which Element Web uses: every format read and written both ways.
import assert from "node:assert/strict";
import { test } from "node:test";
import { deriveRecoveryKeyFromPassphrase } from "matrix-js-sdk/lib/crypto-api/key-passphrase.js";
import {
  decodeRecoveryKey as jsDecodeRecoveryKey,
  encodeRecoveryKey as jsEncodeRecoveryKey,
} from "matrix-js-sdk/lib/crypto-api/recovery-key.js";
import { calculateKeyCheck } from "matrix-js-sdk/lib/secret-storage.js";
import jsDecryptSecret from "matrix-js-sdk/lib/utils/decryptAESSecretStorageItem.js";
import jsEncryptSecret from "matrix-js-sdk/lib/utils/encryptAESSecretStorageItem.js";
import { randomBytes } from "../../src/crypto/primitives/index.ts";
import { decodeRecoveryKey, encodeRecoveryKey } from "../../src/crypto/recovery-key/index.ts";
import {
  checkKey,
  computeKeyCheck,
  decryptSecret,
  deriveKeyFromPassphrase,
  encryptSecret,
  newPassphraseInfo,
  SecretStorageError,
} from "../../src/crypto/secret-storage/index.ts";

const bytes = (n: number) => new Uint8Array(randomBytes(n));

test("recovery keys: matrix-js-sdk and Keyroom write the same text and read each other's", () => {
  for (let i = 0; i < 20; i++) {
    const key = bytes(32);
    const theirs = jsEncodeRecoveryKey(key);
    assert.equal(encodeRecoveryKey(key), theirs);
    assert.deepEqual(decodeRecoveryKey(theirs ?? ""), key);
    assert.deepEqual(jsDecodeRecoveryKey(encodeRecoveryKey(key)), key);
  }
});

test("m.pbkdf2: the same passphrase and parameters give the same key", async () => {
  const info = newPassphraseInfo();
  const theirs = await deriveRecoveryKeyFromPassphrase(
    "correct horse battery staple",
    info.salt,
    info.iterations,
  );
  assert.deepEqual(deriveKeyFromPassphrase("correct horse battery staple", info), new Uint8Array(theirs));
});

test("aes-hmac-sha2 secrets and key checks move both ways", async () => {
  const key = new Uint8Array(bytes(32));
  for (const name of ["m.cross_signing.master", "m.megolm_backup.v1", "org.matrix.msc3814"]) {
    const secret = Buffer.from(bytes(32)).toString("base64").replace(/=+$/, "");
    const theirs = await jsEncryptSecret(secret, key, name);
    assert.equal(decryptSecret(key, name, theirs), secret);
    assert.equal(await jsDecryptSecret(encryptSecret(key, name, secret), key, name), secret);
    // The name is bound in: their record under another name fails our MAC check.
    assert.throws(
      () => decryptSecret(key, `${name}.other`, theirs),
      (e: unknown) => e instanceof SecretStorageError && e.code === "BAD_MAC",
    );
  }
  const theirCheck = await calculateKeyCheck(key);
  assert.equal(checkKey(key, theirCheck), "verified");
  const ours = computeKeyCheck(key);
  assert.equal((await calculateKeyCheck(key, ours.iv)).mac, ours.mac);
  assert.throws(
    () => checkKey(bytes(32), theirCheck),
    (e: unknown) => e instanceof SecretStorageError && e.code === "WRONG_KEY",
  );
});
