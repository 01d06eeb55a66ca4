// Known-answer tests for m.secret_storage.v1.aes-hmac-sha2 from published vectors (rust-sdk's
// secret_storage.rs tests and mautrix-python's ssss/key_test.py), in
// test/vectors/secret-storage/published.json with their provenance.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { decodeBase64 } from "../primitives/index.ts";
import { decodeRecoveryKey } from "../recovery-key/index.ts";
import { checkKey, decryptSecret, encryptSecret, validateEncryptedSecret } from "./aes-hmac-sha2.ts";
import { SecretStorageError } from "./errors.ts";
import { deriveKeyFromPassphrase, PassphraseKeyDerivation, parsePassphraseInfo } from "./passphrase.ts";

interface KeyContent {
  algorithm: string;
  iv?: string;
  mac?: string;
  passphrase?: unknown;
}
interface Vectors {
  rust_sdk_keys: {
    base58: { recovery_key: string; content: KeyContent };
    passphrase: { passphrase: string; content: KeyContent };
    encrypted_data: {
      content: Record<string, string>;
      iv_hex: string;
      mac_hex: string;
      bad_mac_length: Record<string, string>;
      bad_iv_length: Record<string, string>;
    };
  };
  mautrix: {
    key1: { key_id: string; recovery_key: string; passphrase: string; content: KeyContent };
    key2: { key_id: string; recovery_key: string; content: KeyContent };
    key2_broken_iv: KeyContent;
    key2_broken_mac: KeyContent;
    cross_signing_master: {
      secret_name: string;
      content: { encrypted: Record<string, Record<string, string>> };
      decrypted_key_hex: string;
    };
  };
}

const v = JSON.parse(
  readFileSync(new URL("../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
) as Vectors;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SecretStorageError) return e.code;
    throw e;
  }
  return "no error";
}

describe("secret storage known answers (rust-sdk)", () => {
  it("a base58 recovery key passes its key description's check", () => {
    const key = decodeRecoveryKey(v.rust_sdk_keys.base58.recovery_key);
    assert.equal(checkKey(key, v.rust_sdk_keys.base58.content), "verified");
  });
  it("a passphrase key (m.pbkdf2, 10 iterations) passes its check, one-shot and in steps", () => {
    const { passphrase, content } = v.rust_sdk_keys.passphrase;
    const info = parsePassphraseInfo(content.passphrase);
    const key = deriveKeyFromPassphrase(passphrase, info);
    assert.equal(checkKey(key, content), "verified");
    const job = new PassphraseKeyDerivation(passphrase, info);
    const seen: number[] = [];
    while (!job.step(3)) seen.push(job.progress);
    assert.deepEqual(seen, [0.3, 0.6, 0.9]);
    assert.deepEqual(job.result(), key);
    assert.equal(
      code(() => checkKey(deriveKeyFromPassphrase("It's a secret to nobody", info), content)),
      "WRONG_KEY",
    );
  });
  it("the wrong key is WRONG_KEY; malformed check fields are BAD_KEY_DESCRIPTION", () => {
    const key = decodeRecoveryKey(v.rust_sdk_keys.base58.recovery_key);
    assert.equal(
      code(() => checkKey(key, v.mautrix.key2.content)),
      "WRONG_KEY",
    );
    const z = (n: number) => Buffer.alloc(n).toString("base64");
    assert.equal(
      code(() => checkKey(key, { iv: z(14), mac: z(32) })),
      "BAD_KEY_DESCRIPTION",
    );
    assert.equal(
      code(() => checkKey(key, { iv: z(16), mac: z(10) })),
      "BAD_KEY_DESCRIPTION",
    );
    assert.equal(
      code(() => checkKey(key, { iv: z(16) })),
      "BAD_KEY_DESCRIPTION",
    );
    // No check fields at all: the spec says to assume the key is right.
    assert.equal(checkKey(key, {}), "unverifiable");
  });
  it("reads an encrypted secret record's IV and MAC, and refuses wrong lengths", () => {
    const e = v.rust_sdk_keys.encrypted_data;
    const record = validateEncryptedSecret(e.content);
    assert.equal(hex(decodeBase64(record.iv)), e.iv_hex);
    assert.equal(hex(decodeBase64(record.mac)), e.mac_hex);
    assert.equal(
      code(() => validateEncryptedSecret(e.bad_mac_length)),
      "BAD_ENCRYPTED_SECRET",
    );
    assert.equal(
      code(() => validateEncryptedSecret(e.bad_iv_length)),
      "BAD_ENCRYPTED_SECRET",
    );
  });
});

describe("secret storage known answers (mautrix-python)", () => {
  const m = v.mautrix;
  const key1 = decodeRecoveryKey(m.key1.recovery_key);
  const key2 = decodeRecoveryKey(m.key2.recovery_key);
  const master = m.cross_signing_master;
  const encrypted = master.content.encrypted[m.key1.key_id];

  it("both recovery keys pass their checks (one description unpadded, one padded)", () => {
    assert.equal(checkKey(key1, m.key1.content), "verified");
    assert.equal(checkKey(key2, m.key2.content), "verified");
  });
  it("'correct horse battery staple' at 500 000 iterations gives key 1", () => {
    const info = parsePassphraseInfo(m.key1.content.passphrase);
    assert.equal(info.iterations, 500_000);
    assert.deepEqual(deriveKeyFromPassphrase(m.key1.passphrase, info), key1);
  });
  it("decrypts the encrypted m.cross_signing.master to the published key", () => {
    const secret = decryptSecret(key1, master.secret_name, encrypted);
    assert.equal(hex(decodeBase64(secret)), master.decrypted_key_hex);
  });
  it("key 2 fails key 1's check (WRONG_KEY) and key 1's secret (BAD_MAC)", () => {
    assert.equal(
      code(() => checkKey(key2, m.key1.content)),
      "WRONG_KEY",
    );
    assert.equal(
      code(() => decryptSecret(key2, master.secret_name, encrypted)),
      "BAD_MAC",
    );
  });
  it("the secret decrypted under another name fails its MAC (the name is bound in)", () => {
    assert.equal(
      code(() => decryptSecret(key1, "m.cross_signing.self_signing", encrypted)),
      "BAD_MAC",
    );
  });
  it("a broken IV or MAC in the description is BAD_KEY_DESCRIPTION, not WRONG_KEY", () => {
    assert.equal(
      code(() => checkKey(key2, m.key2_broken_iv)),
      "BAD_KEY_DESCRIPTION",
    );
    assert.equal(
      code(() => checkKey(key2, m.key2_broken_mac)),
      "BAD_KEY_DESCRIPTION",
    );
  });
  it("round-trips through our encryption and reproduces mautrix's ciphertext from its IV", () => {
    const secret = decryptSecret(key1, master.secret_name, encrypted);
    const ours = encryptSecret(key1, master.secret_name, secret, decodeBase64(encrypted?.iv ?? ""));
    assert.deepEqual(ours, encrypted);
  });
});
