// Known answers for m.megolm_backup.v1.curve25519-aes-sha2 session_data, from the rust-sdk's
// backups/keys/decryption.rs tests (test/vectors/secret-storage/published.json, "backup").
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
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
