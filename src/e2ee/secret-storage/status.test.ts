// Every "incomplete" state the status names, reached from account data.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ed25519PublicKey,
  encodeBase64,
  randomBytes,
  x25519PublicKey,
} from "../../crypto/primitives/index.ts";
import { computeKeyCheck } from "../../crypto/secret-storage/index.ts";
import { buildSecretContent, newSecretStorageKey } from "./account-data.ts";
import {
  BACKUP_SECRET,
  CROSS_SIGNING_MASTER_SECRET,
  DEFAULT_KEY_TYPE,
  keyType,
  publicKeyOfSecret,
} from "./names.ts";
import { RECOVERY_SECRETS, secretStorageStatus } from "./status.ts";
import { code } from "./test-support/fixtures.ts";

function complete() {
  const k = newSecretStorageKey();
  const data = new Map<string, unknown>([
    [DEFAULT_KEY_TYPE, { key: k.keyId }],
    [keyType(k.keyId), k.content],
  ]);
  for (const name of RECOVERY_SECRETS)
    data.set(name, buildSecretContent(name, encodeBase64(randomBytes(32)), [k]));
  return { k, data };
}

describe("secret storage status", () => {
  it("disabled with nothing, enabled when whole (with and without the key)", () => {
    assert.deepEqual(secretStorageStatus(new Map()), { state: "disabled", problems: [], missing: [] });
    const { k, data } = complete();
    assert.equal(secretStorageStatus(data).state, "enabled");
    const full = secretStorageStatus(data, { key: k.key });
    assert.deepEqual(full, { state: "enabled", defaultKeyId: k.keyId, problems: [], missing: [] });
  });
  it("names each missing or broken piece", () => {
    const { k, data } = complete();
    data.delete(BACKUP_SECRET);
    const s = secretStorageStatus(data);
    assert.equal(s.state, "incomplete");
    assert.deepEqual(s.problems, [{ kind: "secret_missing", secret: BACKUP_SECRET }]);
    assert.deepEqual(s.missing, [BACKUP_SECRET]);

    data.set(BACKUP_SECRET, { encrypted: "nope" });
    assert.deepEqual(secretStorageStatus(data).problems, [
      { kind: "secret_malformed", secret: BACKUP_SECRET },
    ]);

    const other = newSecretStorageKey();
    data.set(BACKUP_SECRET, buildSecretContent(BACKUP_SECRET, "x", [other]));
    assert.deepEqual(secretStorageStatus(data).problems, [
      { kind: "secret_not_encrypted_for_key", secret: BACKUP_SECRET, keyId: k.keyId },
    ]);

    // Encrypted for our key ID but with other bytes: only the key can tell it is corrupt.
    data.set(BACKUP_SECRET, buildSecretContent(BACKUP_SECRET, "x", [{ keyId: k.keyId, key: other.key }]));
    assert.equal(secretStorageStatus(data).state, "enabled");
    assert.deepEqual(secretStorageStatus(data, { key: k.key }).problems, [
      { kind: "secret_corrupt", secret: BACKUP_SECRET, keyId: k.keyId, code: "BAD_MAC" },
    ]);

    // Decrypts, but is not a 32-byte key.
    data.set(BACKUP_SECRET, buildSecretContent(BACKUP_SECRET, "not a key", [k]));
    assert.deepEqual(secretStorageStatus(data, { key: k.key }).problems, [
      { kind: "secret_corrupt", secret: BACKUP_SECRET, keyId: k.keyId, code: "BAD_SECRET" },
    ]);
  });
  it("tells a stale secret (not the account's current key) from a current one", () => {
    const k = newSecretStorageKey();
    const master = randomBytes(32);
    const backup = randomBytes(32);
    const data = new Map<string, unknown>([
      [DEFAULT_KEY_TYPE, { key: k.keyId }],
      [keyType(k.keyId), k.content],
      [
        CROSS_SIGNING_MASTER_SECRET,
        buildSecretContent(CROSS_SIGNING_MASTER_SECRET, encodeBase64(master), [k]),
      ],
      [BACKUP_SECRET, buildSecretContent(BACKUP_SECRET, encodeBase64(backup), [k])],
    ]);
    const secrets = [CROSS_SIGNING_MASTER_SECRET, BACKUP_SECRET];
    const current = {
      [CROSS_SIGNING_MASTER_SECRET]: encodeBase64(ed25519PublicKey(master)),
      [BACKUP_SECRET]: encodeBase64(x25519PublicKey(backup)),
    };
    assert.equal(publicKeyOfSecret(BACKUP_SECRET, encodeBase64(backup)), current[BACKUP_SECRET]);
    assert.equal(publicKeyOfSecret("m.other", "x"), undefined);
    assert.equal(secretStorageStatus(data, { secrets, key: k.key, publicKeys: current }).state, "enabled");
    const reset = {
      ...current,
      [CROSS_SIGNING_MASTER_SECRET]: encodeBase64(ed25519PublicKey(randomBytes(32))),
    };
    const s = secretStorageStatus(data, { secrets, key: k.key, publicKeys: reset });
    assert.deepEqual(s.problems, [
      { kind: "secret_mismatch", secret: CROSS_SIGNING_MASTER_SECRET, keyId: k.keyId },
    ]);
    assert.deepEqual(s.missing, [CROSS_SIGNING_MASTER_SECRET]);
  });
  it("names default-key and key-description problems, and a wrong key", () => {
    const { k, data } = complete();
    assert.deepEqual(secretStorageStatus(data, { key: randomBytes(32) }).problems, [
      { kind: "wrong_key", keyId: k.keyId },
    ]);
    data.set(keyType(k.keyId), { algorithm: "m.secret_storage.v1.aes-hmac-sha2", iv: "AAAA", mac: "AAAA" });
    assert.deepEqual(secretStorageStatus(data).problems, [
      { kind: "key_malformed", keyId: k.keyId, code: "BAD_KEY_DESCRIPTION" },
    ]);
    data.delete(keyType(k.keyId));
    const s = secretStorageStatus(data);
    assert.deepEqual(s.problems, [{ kind: "key_missing", keyId: k.keyId }]);
    assert.deepEqual(s.missing, [keyType(k.keyId)]);
    data.set(DEFAULT_KEY_TYPE, { key: 7 });
    assert.deepEqual(secretStorageStatus(data).problems, [{ kind: "default_key_malformed" }]);
    data.delete(DEFAULT_KEY_TYPE);
    assert.deepEqual(secretStorageStatus(data).problems, [{ kind: "no_default_key" }]);
    assert.deepEqual(secretStorageStatus(data).missing, [DEFAULT_KEY_TYPE]);
    assert.equal(
      code(() => secretStorageStatus(data, { key: new Uint8Array(3) })),
      "BAD_ARGUMENT",
    );
  });
  it("a partial set-up by another client (only the master key, under a key with no check) is incomplete, not stuck", () => {
    const k = newSecretStorageKey();
    const { iv: _iv, mac: _mac, ...noCheck } = k.content;
    const data = new Map<string, unknown>([
      [DEFAULT_KEY_TYPE, { key: k.keyId }],
      [keyType(k.keyId), noCheck],
      [
        "m.cross_signing.master",
        buildSecretContent("m.cross_signing.master", encodeBase64(randomBytes(32)), [k]),
      ],
    ]);
    const s = secretStorageStatus(data, { key: k.key });
    assert.equal(s.state, "incomplete");
    assert.deepEqual(s.missing, [
      "m.cross_signing.self_signing",
      "m.cross_signing.user_signing",
      BACKUP_SECRET,
    ]);
  });
  it("a weak key vouched for by its check is key_weak; without the check it is key_malformed", () => {
    const { k, data } = complete();
    // As another client would describe a key made from a passphrase with 1000 iterations.
    const weak = {
      algorithm: "m.secret_storage.v1.aes-hmac-sha2",
      passphrase: { algorithm: "m.pbkdf2", salt: "IuLnH7S85YtZmkkBJKwNUKxWF42g9O1H", iterations: 1000 },
      ...computeKeyCheck(k.key),
    };
    data.set(keyType(k.keyId), weak);
    for (const s of [secretStorageStatus(data), secretStorageStatus(data, { key: k.key })]) {
      assert.equal(s.state, "incomplete");
      assert.deepEqual(s.problems, [{ kind: "key_weak", keyId: k.keyId }]);
      assert.deepEqual(s.missing, [keyType(k.keyId)]);
    }
    const { iv: _iv, mac: _mac, ...unchecked } = weak;
    data.set(keyType(k.keyId), unchecked);
    assert.deepEqual(secretStorageStatus(data).problems, [
      { kind: "key_malformed", keyId: k.keyId, code: "WEAK_PASSPHRASE_PARAMETERS" },
    ]);
  });
});
