import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { decodeBase64 } from "../../crypto/primitives/index.ts";
import { CROSS_SIGNING_MASTER_SECRET, CROSS_SIGNING_SELF_SIGNING_SECRET, DEFAULT_KEY_TYPE } from "./names.ts";
import { code, mautrix, mautrixAccountData } from "./test-support/fixtures.ts";
import {
  defaultKeyId,
  keyDescription,
  readSecret,
  unlockWithKey,
  unlockWithPassphrase,
  unlockWithRecoveryKey,
} from "./unlock.ts";

describe("opening secret storage (mautrix-python's account data)", () => {
  const data = mautrixAccountData();
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

  it("finds the default key, unlocks it with the recovery key and reads the master key", () => {
    assert.equal(defaultKeyId(data), mautrix.key1.key_id);
    const key = unlockWithRecoveryKey(keyDescription(data), mautrix.key1.recovery_key);
    assert.equal(key.check, "verified");
    const secret = readSecret(data, CROSS_SIGNING_MASTER_SECRET, key);
    assert.equal(hex(decodeBase64(secret)), mautrix.cross_signing_master.decrypted_key_hex);
    assert.equal(JSON.stringify(key), JSON.stringify({ keyId: mautrix.key1.key_id }));
    assert.ok(!inspect(key).includes(hex(key.key)));
  });
  it("unlocks with the passphrase ('correct horse battery staple')", () => {
    const key = unlockWithPassphrase(keyDescription(data), mautrix.key1.passphrase);
    assert.ok(readSecret(data, CROSS_SIGNING_MASTER_SECRET, key).length > 0);
  });
  it("says exactly what is wrong: typo, wrong key, no passphrase, missing pieces", () => {
    const d1 = keyDescription(data);
    const d2 = keyDescription(data, mautrix.key2.key_id);
    const typo = `${mautrix.key1.recovery_key.slice(0, -1)}D`;
    assert.equal(
      code(() => unlockWithRecoveryKey(d1, typo)),
      "RecoveryKeyError:BAD_PARITY",
    );
    assert.equal(
      code(() => unlockWithRecoveryKey(d1, mautrix.key2.recovery_key)),
      "WRONG_KEY",
    );
    assert.equal(
      code(() => unlockWithPassphrase(d2, "anything")),
      "NO_PASSPHRASE",
    );
    assert.equal(
      code(() => unlockWithKey(d1, new Uint8Array(32))),
      "WRONG_KEY",
    );
    assert.equal(
      code(() => keyDescription(data, "nope")),
      "KEY_MISSING",
    );
    assert.equal(
      code(() => defaultKeyId(new Map())),
      "KEY_MISSING",
    );
    assert.equal(
      code(() => defaultKeyId(new Map([[DEFAULT_KEY_TYPE, { key: 3 }]]))),
      "BAD_KEY_DESCRIPTION",
    );
    const key2 = unlockWithRecoveryKey(d2, mautrix.key2.recovery_key);
    assert.equal(
      code(() => readSecret(data, CROSS_SIGNING_SELF_SIGNING_SECRET, key2)),
      "SECRET_MISSING",
    );
    assert.equal(
      code(() => readSecret(data, CROSS_SIGNING_MASTER_SECRET, key2)),
      "SECRET_NOT_ENCRYPTED_FOR_KEY",
    );
    // Key 2's bytes presented under key 1's ID: the record exists, its MAC fails: corrupt.
    const forged = { keyId: mautrix.key1.key_id, key: key2.key };
    assert.equal(
      code(() => readSecret(data, CROSS_SIGNING_MASTER_SECRET, forged)),
      "BAD_MAC",
    );
  });
});
