import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { PkDecryption, PkEncryption } from "../pk/index.ts";
import { decodeBase64 } from "../primitives/index.ts";
import { BackupError } from "./errors.ts";
import {
  type BackedUpRoomKey,
  backupKeyMatches,
  buildBackupAuthData,
  decryptKeyBackupData,
  encryptKeyBackupData,
  parseBackupVersion,
} from "./megolm-backup-v1.ts";

interface Vectors {
  jssdk_backup: {
    private_key_base64: string;
    other_private_key_base64: string;
    key_backup_data: unknown;
    session: { sender_key: string; session_key_at_0: string; sender_claimed_keys: Record<string, string> };
    signed_backup_info: Record<string, unknown>;
  };
  backup: { private_key_base64: string; key_backup_data: unknown };
}
const v = JSON.parse(
  readFileSync(new URL("../../../test/vectors/secret-storage/published.json", import.meta.url), "utf8"),
) as Vectors;

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof BackupError) return e.code;
    throw e;
  }
  return "no error";
}

describe("m.megolm_backup.v1.curve25519-aes-sha2 records", () => {
  const js = v.jssdk_backup;
  const decryption = PkDecryption.fromPrivateKey(decodeBase64(js.private_key_base64));

  it("parses matrix-js-sdk's signed version and matches its key", () => {
    const version = parseBackupVersion(js.signed_backup_info);
    assert.equal(version.version, "1");
    assert.ok(backupKeyMatches(decryption, version));
    assert.ok(!backupKeyMatches(PkDecryption.create(), version));
    assert.deepEqual(buildBackupAuthData(decryption), { public_key: version.publicKey });
  });
  it("decrypts matrix-js-sdk's and the rust-sdk's published records", () => {
    const ours = decryptKeyBackupData(decryption, js.key_backup_data);
    assert.equal(ours.key.session_key, js.session.session_key_at_0);
    assert.equal(ours.key.sender_key, js.session.sender_key);
    assert.deepEqual(ours.key.sender_claimed_keys, js.session.sender_claimed_keys);
    assert.equal(ours.firstMessageIndex, 1);
    assert.equal(ours.isVerified, false);
    const rust = decryptKeyBackupData(
      PkDecryption.fromPrivateKey(decodeBase64(v.backup.private_key_base64)),
      v.backup.key_backup_data,
    );
    assert.equal(rust.key.algorithm, "m.megolm.v1.aes-sha2");
  });
  it("a wrong key is BAD_MAC; malformed versions and records have their own codes", () => {
    const other = PkDecryption.fromPrivateKey(decodeBase64(js.other_private_key_base64));
    assert.equal(
      code(() => decryptKeyBackupData(other, js.key_backup_data)),
      "BAD_MAC",
    );
    assert.equal(
      code(() => decryptKeyBackupData(decryption, { session_data: 1 })),
      "BAD_FORMAT",
    );
    assert.equal(
      code(() => decryptKeyBackupData(decryption, { session_data: { mac: "x" } })),
      "BAD_FORMAT",
    );
    assert.equal(
      code(() => parseBackupVersion({ ...js.signed_backup_info, algorithm: "m.other" })),
      "UNSUPPORTED_ALGORITHM",
    );
    assert.equal(
      code(() => parseBackupVersion({ ...js.signed_backup_info, auth_data: { public_key: "AAAA" } })),
      "BAD_FORMAT",
    );
    assert.equal(
      code(() => parseBackupVersion({})),
      "BAD_FORMAT",
    );
    const notAKey = new PkEncryption(decryption.publicKey).encrypt('{"algorithm":1}');
    assert.equal(
      code(() => decryptKeyBackupData(decryption, { session_data: notAKey })),
      "BAD_ROOM_KEY",
    );
  });
  it("round-trips a room key, reading every name of the shared-history flag", () => {
    const encryption = new PkEncryption(decryption.publicKey);
    const key: BackedUpRoomKey = {
      algorithm: "m.megolm.v1.aes-sha2",
      sender_key: js.session.sender_key,
      session_key: js.session.session_key_at_0,
      sender_claimed_keys: js.session.sender_claimed_keys,
      forwarding_curve25519_key_chain: [],
      shared_history: true,
    };
    const record = encryptKeyBackupData(encryption, key, {
      firstMessageIndex: 0,
      forwardedCount: 0,
      isVerified: true,
    });
    assert.deepEqual(decryptKeyBackupData(decryption, record).key, key);
    for (const name of ["m.shared_history", "org.matrix.msc3061.shared_history"]) {
      const { shared_history: _, ...rest } = key;
      const data = encryption.encrypt(JSON.stringify({ ...rest, [name]: true }));
      assert.equal(decryptKeyBackupData(decryption, { session_data: data }).key.shared_history, true);
    }
    assert.equal(
      code(() =>
        encryptKeyBackupData(encryption, key, {
          firstMessageIndex: -1,
          forwardedCount: 0,
          isVerified: false,
        }),
      ),
      "BAD_ARGUMENT",
    );
  });
  it("parsers throw only BackupError for any JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        code(() => parseBackupVersion(value));
        code(() => decryptKeyBackupData(decryption, value));
        code(() => decryptKeyBackupData(decryption, { session_data: value }));
      }),
      { numRuns: 300 },
    );
  });
});
