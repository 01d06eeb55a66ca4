// A server that lowers a secret storage key's passphrase parameters (devserver, Keyroom clients).
// Without a key check the key is refused before the passphrase is derived, so nothing is written
// under a cheaply derived key; with a check (a weak key another client made) the key opens and
// recovery works, but nothing new is written under it until changeRecoveryKey moves the secrets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SecretStorageError } from "../../src/client/index.ts";
import { decodeRecoveryKey } from "../../src/crypto/recovery-key/index.ts";
import { computeKeyCheck } from "../../src/crypto/secret-storage/index.ts";
import { keyType, RECOVERY_SECRETS } from "../../src/e2ee/index.ts";
import { devServerFixture, fixtureUser } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-weak-pbkdf2-");

const BACKUP = "m.megolm_backup.v1";
const AES = "m.secret_storage.v1.aes-hmac-sha2";
const storageCode = (code: string) => (e: unknown) => e instanceof SecretStorageError && e.code === code;

describe("recovery with weak passphrase parameters (devserver)", () => {
  it("a key without a check and iterations 1, salt '': refused before deriving, nothing written", async () => {
    const alice = await fixtureUser(fx, "wu");
    await alice.client.crypto.recovery.enable({ auth: { password: "pw" } });
    const ss = alice.client.crypto.secretStorage;
    const keyId = (await ss.defaultKeyId()) as string;
    // The server replaces the description and drops the secrets, hoping this device writes them
    // back under PBKDF2(passphrase, "", 1): then any passphrase guess is checked in a microsecond.
    await alice.client.setAccountData(keyType(keyId), {
      algorithm: AES,
      passphrase: { algorithm: "m.pbkdf2", salt: "", iterations: 1 },
    });
    for (const name of RECOVERY_SECRETS) await alice.client.setAccountData(name, {});

    const progress: number[] = [];
    await assert.rejects(
      ss.unlock({ passphrase: "a passphrase", onProgress: (f) => progress.push(f) }),
      storageCode("WEAK_PASSPHRASE_PARAMETERS"),
    );
    assert.deepEqual(progress, [], "no derivation started");
    await assert.rejects(
      alice.client.crypto.recovery.recover({ passphrase: "a passphrase" }),
      storageCode("WEAK_PASSPHRASE_PARAMETERS"),
    );
    // A plain string that is not a recovery key is tried as the passphrase: refused the same way.
    await assert.rejects(
      alice.client.crypto.recovery.recover("a passphrase"),
      storageCode("WEAK_PASSPHRASE_PARAMETERS"),
    );
    const view = await ss.view();
    for (const name of RECOVERY_SECRETS) assert.equal(view.has(name), false, `${name} was written`);
  });

  it("a weak key proved by its check opens and recovers, writes nothing new, and changeRecoveryKey moves off it", async () => {
    const alice = await fixtureUser(fx, "wc");
    const { recoveryKey } = await alice.client.crypto.recovery.enable({ auth: { password: "pw" } });
    const ss = alice.client.crypto.secretStorage;
    const keyId = (await ss.defaultKeyId()) as string;
    // As another client would describe a key it made from a passphrase with 1000 iterations.
    const key = decodeRecoveryKey(recoveryKey);
    await alice.client.setAccountData(keyType(keyId), {
      algorithm: AES,
      passphrase: { algorithm: "m.pbkdf2", salt: "IuLnH7S85YtZmkkBJKwNUKxWF42g9O1H", iterations: 1000 },
      ...computeKeyCheck(key),
    });
    await alice.client.setAccountData(BACKUP, {});

    const opened = await ss.unlock({ recoveryKey });
    assert.deepEqual([opened.check, opened.weakPassphrase], ["verified", true]);
    assert.ok(await ss.get("m.cross_signing.master", opened));
    await assert.rejects(ss.store(BACKUP, "bmV3", [opened]), storageCode("WEAK_PASSPHRASE_PARAMETERS"));

    const r = await alice.client.crypto.recovery.recover({ recoveryKey });
    assert.equal(r.crossSigned, true);
    assert.deepEqual(r.repaired, [], "nothing written back under the weak key");
    assert.equal((await ss.view()).has(BACKUP), false);
    // The status names the weak key and the missing backup key, each repaired by a new key.
    assert.deepEqual(await alice.client.crypto.recovery.status(), {
      state: "incomplete",
      missing: [
        { name: keyType(keyId), problem: "key_weak", repair: "changeRecoveryKey" },
        { name: BACKUP, problem: "secret_missing", repair: "changeRecoveryKey" },
      ],
    });

    const changed = await alice.client.crypto.recovery.changeRecoveryKey({ current: { recoveryKey } });
    const fresh = await ss.unlock({ recoveryKey: changed.recoveryKey });
    assert.equal(fresh.weakPassphrase, false);
    for (const name of RECOVERY_SECRETS) assert.ok(await ss.get(name, fresh), name);
    assert.deepEqual(await alice.client.crypto.recovery.status(), { state: "enabled", missing: [] });
  });
});
