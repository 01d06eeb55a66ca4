// Known answers for m.megolm_backup.v1.curve25519-aes-sha2 session_data, from the rust-sdk's
// backups/keys/decryption.rs tests and matrix-js-sdk's generated crypto test data
// (test/vectors/secret-storage/published.json, "backup" and "jssdk_backup").
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { verifySignedJson } from "../json/index.ts";
import { decodeBase64, encodeBase64 } from "../primitives/index.ts";
import { decodeRecoveryKey, encodeRecoveryKey } from "../recovery-key/index.ts";
import { PkError } from "./errors.ts";
import { PkDecryption } from "./pk-decryption.ts";

interface Backup {
  private_key_base64: string;
  key_backup_data: { session_data: { ephemeral: string; ciphertext: string; mac: string } };
  recovery_key: string;
  recovery_key_public_key_hex: string;
}
const { backup } = JSON.parse(
  readFileSync(new URL("../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
) as { backup: Backup };

describe("backup session_data known answers (rust-sdk)", () => {
  const decryption = PkDecryption.fromPrivateKey(decodeBase64(backup.private_key_base64));
  const data = backup.key_backup_data.session_data;

  it("decrypts the published session_data (MAC GtMrurhDTwo) to a backed-up room key", () => {
    assert.equal(data.mac, "GtMrurhDTwo");
    const key = JSON.parse(decryption.decryptString(data)) as Record<string, unknown>;
    assert.equal(key.algorithm, "m.megolm.v1.aes-sha2");
    assert.equal(typeof key.sender_key, "string");
    assert.equal(typeof key.session_key, "string");
    assert.ok(Array.isArray(key.forwarding_curve25519_key_chain));
  });
  it("refuses it with a flipped MAC (BAD_MAC) and under another key", () => {
    const mac = decodeBase64(data.mac);
    mac[0]! ^= 1;
    assert.throws(
      () => decryption.decrypt({ ...data, mac: encodeBase64(mac) }),
      (e: unknown) => e instanceof PkError && e.code === "BAD_MAC",
    );
    assert.throws(
      () => PkDecryption.create().decrypt(data),
      (e: unknown) => e instanceof PkError && e.code === "BAD_MAC",
    );
  });
  it("a recovery key holds the backup's Curve25519 private key: EsTc LW2K… is RFC 7748's Alice", () => {
    const privateKey = decodeRecoveryKey(backup.recovery_key);
    const pk = PkDecryption.fromPrivateKey(privateKey);
    assert.equal(Buffer.from(decodeBase64(pk.publicKey)).toString("hex"), backup.recovery_key_public_key_hex);
    assert.equal(encodeRecoveryKey(pk.exportPrivateKey()), backup.recovery_key);
  });
});

interface JsSdkBackup {
  private_key_base64: string;
  other_private_key_base64: string;
  recovery_key: string;
  key_backup_data: {
    first_message_index: number;
    session_data: { ephemeral: string; ciphertext: string; mac: string };
  };
  session: {
    algorithm: string;
    sender_key: string;
    session_id: string;
    session_key_at_0: string;
    session_key_at_1: string;
    sender_claimed_keys: Record<string, string>;
  };
  signed_backup_info: {
    auth_data: { public_key: string; signatures: Record<string, Record<string, string>> };
  };
  device: { user_id: string; device_id: string; ed25519: string };
}
const { jssdk_backup: js } = JSON.parse(
  readFileSync(new URL("../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
) as { jssdk_backup: JsSdkBackup };

describe("backup known answers (matrix-js-sdk's generated test data)", () => {
  const decryption = PkDecryption.fromPrivateKey(decodeBase64(js.private_key_base64));

  it("the backup key is the recovery key's, and its public key is the version's auth_data key", () => {
    assert.deepEqual(decodeRecoveryKey(js.recovery_key), decodeBase64(js.private_key_base64));
    assert.equal(decryption.publicKey, js.signed_backup_info.auth_data.public_key);
  });
  it("decrypts session_data to MEGOLM_SESSION_DATA's key", () => {
    const key = JSON.parse(decryption.decryptString(js.key_backup_data.session_data)) as Record<
      string,
      unknown
    >;
    assert.equal(key.algorithm, js.session.algorithm);
    assert.equal(key.sender_key, js.session.sender_key);
    // The generator backs up the session at index 0, though the record's first_message_index says 1.
    assert.equal(key.session_key, js.session.session_key_at_0);
    assert.deepEqual(key.sender_claimed_keys, js.session.sender_claimed_keys);
    assert.deepEqual(key.forwarding_curve25519_key_chain, []);
  });
  it("another private key fails the MAC (BAD_MAC)", () => {
    assert.throws(
      () =>
        PkDecryption.fromPrivateKey(decodeBase64(js.other_private_key_base64)).decrypt(
          js.key_backup_data.session_data,
        ),
      (e: unknown) => e instanceof PkError && e.code === "BAD_MAC",
    );
  });
  it("the version's auth_data carries the device's valid signature, which breaks if the key changes", () => {
    const { auth_data } = js.signed_backup_info;
    const keyId = `ed25519:${js.device.device_id}`;
    assert.equal(verifySignedJson(auth_data, js.device.user_id, keyId, js.device.ed25519), true);
    const forged = { ...auth_data, public_key: PkDecryption.create().publicKey };
    assert.equal(verifySignedJson(forged, js.device.user_id, keyId, js.device.ed25519), false);
  });
});
