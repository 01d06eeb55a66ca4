// Recovery through the devserver with Keyroom clients: enable on one device, recover on a new one
// (cross-signed, history read from the backup), a wrong key changes nothing, and every incomplete
// state is reached and repaired by the call its status names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type MatrixClient,
  RecoveryError,
  type RecoveryRepair,
  SecretStorageError,
} from "../../src/client/index.ts";
import { encodeRecoveryKey } from "../../src/crypto/recovery-key/index.ts";
import {
  devServerFixture,
  fixtureDevice,
  fixtureUser,
  syncAll,
  type TestClient,
  texts,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-recovery-");

const MASTER = "m.cross_signing.master";
const SSK = "m.cross_signing.self_signing";
const BACKUP = "m.megolm_backup.v1";
const DEFAULT_KEY = "m.secret_storage.default_key";

/** An account with recovery enabled and some encrypted history backed up. */
async function enabledAccount(
  prefix: string,
  messages = 0,
): Promise<{ alice: TestClient; recoveryKey: string; roomId: string }> {
  const alice = await fixtureUser(fx, prefix);
  const { recoveryKey } = await alice.client.crypto.recovery.enable({ auth: { password: "pw" } });
  const roomId = await alice.client.createRoom({ name: "history", encrypted: true });
  await syncAll(alice);
  for (let i = 0; i < messages; i++) await alice.client.sendText(roomId, `history ${i}`);
  await alice.client.crypto.backup.uploadPending();
  return { alice, recoveryKey, roomId };
}

async function expectRepair(
  client: MatrixClient,
  name: string,
  problem: string,
  repair: RecoveryRepair,
  key?: string,
) {
  const status = await client.crypto.recovery.status(key === undefined ? undefined : { recoveryKey: key });
  assert.equal(status.state, "incomplete", JSON.stringify(status));
  const item = status.missing.find((m) => m.name === name);
  assert.deepEqual(item, { name, problem, repair }, JSON.stringify(status.missing));
}

async function expectEnabled(client: MatrixClient, key: string) {
  const shallow = await client.crypto.recovery.status();
  assert.deepEqual(shallow, { state: "enabled", missing: [] });
  const deep = await client.crypto.recovery.status({ recoveryKey: key });
  assert.deepEqual(deep, { state: "enabled", missing: [] });
}

const storageCode = (code: string) => (e: unknown) => e instanceof SecretStorageError && e.code === code;

describe("recovery (devserver, Keyroom)", () => {
  it("enable, then a new device recovers: cross-signed, backup in use, history readable", async () => {
    const { alice, recoveryKey, roomId } = await enabledAccount("rc", 3);
    assert.match(recoveryKey, /^Es[1-9A-HJ-NP-Za-km-z]{2}( [1-9A-HJ-NP-Za-km-z]{4}){11}$/);
    await expectEnabled(alice.client, recoveryKey);

    const fresh = await fixtureDevice(fx, alice, "new");
    await syncAll(fresh);
    assert.deepEqual(texts(fresh, roomId), []);
    // A well-formed key of another account: typed, and nothing changes.
    const wrong = encodeRecoveryKey(new Uint8Array(32).fill(9));
    await assert.rejects(
      fresh.client.crypto.recovery.recover({ recoveryKey: wrong }),
      storageCode("WRONG_KEY"),
    );
    await syncAll(fresh);
    assert.deepEqual(texts(fresh, roomId), []);
    assert.equal((await fresh.client.getCrossSigningStatus()).deviceCrossSigned, false);
    assert.equal((await fresh.client.crypto.backup.status()).hasKey, false);

    const result = await fresh.client.crypto.recovery.recover({ recoveryKey });
    assert.equal(result.crossSigned, true);
    assert.equal(result.backupVersion, (await alice.client.crypto.backup.status()).version);
    assert.equal(result.restored, 1);
    assert.deepEqual(result.repaired, []);
    assert.deepEqual(texts(fresh, roomId).sort(), ["history 0", "history 1", "history 2"]);
    const cs = await fresh.client.getCrossSigningStatus();
    assert.equal(cs.verified, true);
    // The first device sees the new one cross-signed (once sync says our devices changed).
    await syncAll(alice);
    const devices = await alice.client.getUserDevices(alice.client.userId);
    assert.equal(devices.find((d) => d.deviceId === fresh.client.deviceId)?.crossSigned, true);
  });

  it("a passphrase works like the recovery key; changeRecoveryKey retires the old key and carries secrets over", async () => {
    const alice = await fixtureUser(fx, "rp");
    const first = await alice.client.crypto.recovery.enable({
      auth: { password: "pw" },
      passphrase: "a long passphrase",
    });
    const fresh = await fixtureDevice(fx, alice, "new");
    // A plain string is read as a recovery key when it is one, else as the passphrase.
    const r = await fresh.client.crypto.recovery.recover("a long passphrase");
    assert.equal(r.crossSigned, true);
    // A secret this device does not hold itself (the dehydrated-device key) is carried over with `current`.
    const dehydration = "org.matrix.msc3814";
    const value = "ZGVoeWRyYXRpb24ga2V5IG9mIDMyIGJ5dGVzIGxvbmch";
    const ss = fresh.client.crypto.secretStorage;
    await ss.store(dehydration, value, [await ss.unlock({ recoveryKey: first.recoveryKey })]);
    const changed = await fresh.client.crypto.recovery.changeRecoveryKey({
      current: { recoveryKey: first.recoveryKey },
    });
    assert.notEqual(changed.keyId, first.keyId);
    assert.equal(await ss.get(dehydration, await ss.unlock({ recoveryKey: changed.recoveryKey })), value);
    // The retired key (perhaps changed because it leaked) opens none of them any more.
    const retired = await ss.unlock({ recoveryKey: first.recoveryKey }, first.keyId);
    for (const name of [dehydration, "m.cross_signing.master", "m.megolm_backup.v1"]) {
      await assert.rejects(ss.get(name, retired), storageCode("SECRET_NOT_ENCRYPTED_FOR_KEY"), name);
    }
    // Without `current` it stays readable with the old key only.
    const latest = await fresh.client.crypto.recovery.changeRecoveryKey();
    await assert.rejects(
      ss.get(dehydration, await ss.unlock({ recoveryKey: latest.recoveryKey })),
      storageCode("SECRET_NOT_ENCRYPTED_FOR_KEY"),
    );
    await assert.rejects(
      alice.client.crypto.recovery.status({ recoveryKey: first.recoveryKey }),
      storageCode("WRONG_KEY"),
    );
    await expectEnabled(alice.client, latest.recoveryKey);
  });

  it("changeRecoveryKey with the current key keeps the backup whose key is in storage, not held here", async () => {
    const { alice, recoveryKey, roomId } = await enabledAccount("rk", 2);
    const fresh = await fixtureDevice(fx, alice, "new");
    await fresh.client.crypto.recovery.recover({ recoveryKey });
    // The first device replaces the backup and stores the new key in secret storage (as Element's
    // backup reset does); the new device switches to that version without its key.
    const { version, privateKey } = await alice.client.crypto.backup.createVersion();
    const ss = alice.client.crypto.secretStorage;
    await ss.store(BACKUP, Buffer.from(privateKey).toString("base64").replace(/=+$/, ""), [
      await ss.unlock({ recoveryKey }),
    ]);
    await alice.client.crypto.backup.uploadPending();
    await fresh.client.crypto.backup.checkVersion();
    const before = await fresh.client.crypto.backup.status();
    assert.equal(before.version, version);
    assert.equal(before.hasKey, false);

    const changed = await fresh.client.crypto.recovery.changeRecoveryKey({ current: { recoveryKey } });
    // The backup holding the history stays; the new recovery key opens it.
    const after = await fresh.client.crypto.backup.status();
    assert.equal(after.version, version);
    assert.equal(after.hasKey, true);
    const third = await fixtureDevice(fx, alice, "third");
    await syncAll(third);
    const r = await third.client.crypto.recovery.recover({ recoveryKey: changed.recoveryKey });
    assert.equal(r.backupVersion, version);
    assert.equal(r.restored, 1);
    assert.deepEqual(texts(third, roomId).sort(), ["history 0", "history 1"]);
  });

  it("a wrong key for a key without a key check is refused: the secrets stored under the real key stay", async () => {
    const { alice, recoveryKey } = await enabledAccount("rw");
    const keyId = (await alice.client.crypto.secretStorage.defaultKeyId()) as string;
    // A description without `iv` / `mac` (older clients wrote them so): any key passes the check.
    await alice.client.setAccountData(`m.secret_storage.key.${keyId}`, {
      algorithm: "m.secret_storage.v1.aes-hmac-sha2",
    });
    const wrong = encodeRecoveryKey(new Uint8Array(32).fill(9));
    await assert.rejects(
      alice.client.crypto.recovery.recover({ recoveryKey: wrong }),
      storageCode("WRONG_KEY"),
    );
    const ss = alice.client.crypto.secretStorage;
    const real = await ss.unlock({ recoveryKey });
    for (const name of [MASTER, SSK, BACKUP]) assert.ok(await ss.get(name, real));
  });

  it("a backup secret that decrypts to something not a key is repaired by recover, as its status says", async () => {
    const { alice, recoveryKey } = await enabledAccount("rb");
    const ss = alice.client.crypto.secretStorage;
    await ss.store(BACKUP, "not a key", [await ss.unlock({ recoveryKey })]);
    await expectRepair(alice.client, BACKUP, "secret_corrupt", "recover", recoveryKey);
    const before = (await alice.client.crypto.backup.status()).version;
    const r = await alice.client.crypto.recovery.recover({ recoveryKey });
    assert.deepEqual([r.backupVersion, r.repaired], [before, [BACKUP]]);
    await expectEnabled(alice.client, recoveryKey);
  });

  it("stale, corrupt and missing secrets each have their own error on a device that cannot repair them", async () => {
    const { alice, recoveryKey } = await enabledAccount("re");
    const fresh = await fixtureDevice(fx, alice, "new");
    // A stale secret: the identity was replaced without updating secret storage.
    const stored = structuredClone(alice.client.getAccountData(MASTER));
    await alice.client.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    await assert.rejects(
      fresh.client.crypto.recovery.recover({ recoveryKey }),
      (e: unknown) =>
        e instanceof RecoveryError &&
        e.code === "SECRET_STALE" &&
        e.secret === MASTER &&
        e.repair === "resetIdentity",
    );
    await alice.client.crypto.recovery.recover({ recoveryKey }); // the first device writes its new keys back
    assert.notDeepEqual(alice.client.getAccountData(MASTER), stored);
    const master = alice.client.getAccountData(MASTER) as { encrypted: Record<string, { mac: string }> };
    const broken = structuredClone(master);
    for (const entry of Object.values(broken.encrypted))
      entry.mac = entry.mac.startsWith("A") ? `B${entry.mac.slice(1)}` : `A${entry.mac.slice(1)}`;
    await alice.client.setAccountData(MASTER, broken);
    await assert.rejects(
      fresh.client.crypto.recovery.recover({ recoveryKey }),
      (e: unknown) =>
        e instanceof SecretStorageError &&
        e.code === "BAD_MAC" &&
        e.message.includes(MASTER) &&
        e.message.includes("resetIdentity"),
    );
    await alice.client.setAccountData(MASTER, {});
    await assert.rejects(
      fresh.client.crypto.recovery.recover({ recoveryKey }),
      (e: unknown) =>
        e instanceof SecretStorageError && e.code === "SECRET_MISSING" && e.message.includes(MASTER),
    );
    // Nothing was taken: the device is as before.
    assert.equal((await fresh.client.getCrossSigningStatus()).privateKeys.selfSigning, false);
    // ... and the status names the way out, which works.
    await expectRepair(fresh.client, MASTER, "secret_missing", "resetIdentity");
    const reset = await fresh.client.crypto.recovery.resetIdentity({ auth: { password: "pw" } });
    await expectEnabled(fresh.client, reset.recoveryKey);
    assert.equal((await fresh.client.getCrossSigningStatus()).deviceCrossSigned, true);
  });

  it("every incomplete state is repaired by the call its status names", async () => {
    const { alice, recoveryKey } = await enabledAccount("ri");
    const c = alice.client;
    let key = recoveryKey;
    const repairWith = async (repair: RecoveryRepair): Promise<void> => {
      if (repair === "recover") await c.crypto.recovery.recover({ recoveryKey: key });
      else if (repair === "changeRecoveryKey")
        key = (await c.crypto.recovery.changeRecoveryKey()).recoveryKey;
      else key = (await c.crypto.recovery.resetIdentity({ auth: { password: "pw" } })).recoveryKey;
      await expectEnabled(c, key);
    };
    const keyId = async () => (await c.crypto.secretStorage.defaultKeyId()) as string;

    // secret_missing (held here) → recover writes it back.
    await c.setAccountData(SSK, {});
    await expectRepair(c, SSK, "secret_missing", "recover");
    await repairWith("recover");
    // secret_malformed → recover.
    await c.setAccountData(SSK, { encrypted: "junk" });
    await expectRepair(c, SSK, "secret_malformed", "recover");
    await repairWith("recover");
    // secret_not_encrypted_for_key → recover.
    const other = await c.crypto.secretStorage.createKey({ setDefault: false });
    await c.setAccountData(SSK, {});
    await c.crypto.secretStorage.store(
      SSK,
      (await c.crypto.machine.exportCrossSigningKeys()).selfSigning as string,
      [other.key],
    );
    await expectRepair(c, SSK, "secret_not_encrypted_for_key", "recover");
    await repairWith("recover");
    // secret_corrupt (seen with the key) → recover.
    const content = c.getAccountData(BACKUP) as { encrypted: Record<string, { ciphertext: string }> };
    const entry = content.encrypted[await keyId()];
    assert.ok(entry);
    entry.ciphertext = entry.ciphertext.startsWith("A")
      ? `B${entry.ciphertext.slice(1)}`
      : `A${entry.ciphertext.slice(1)}`;
    await c.setAccountData(BACKUP, content);
    await expectRepair(c, BACKUP, "secret_corrupt", "recover", key);
    await repairWith("recover");
    // secret_mismatch: the identity was replaced without updating storage → recover stores the new keys.
    await c.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    await expectRepair(c, MASTER, "secret_mismatch", "recover", key);
    await repairWith("recover");
    // backup_missing: the version was deleted on the server by another client, backup still on
    // (deleteVersion here would turn backup off: nothing is missing then) → recover makes a new one.
    const { version } = await c.crypto.backup.status();
    const deleted = await fx.hs.api("DELETE", `/room_keys/version/${version}`, {
      token: (await c.store.loadSession())?.accessToken as string,
    });
    assert.equal(deleted.status, 200);
    await expectRepair(c, BACKUP, "backup_missing", "recover");
    await repairWith("recover");
    // no_default_key → changeRecoveryKey.
    await c.setAccountData(DEFAULT_KEY, {});
    await expectRepair(c, DEFAULT_KEY, "no_default_key", "changeRecoveryKey");
    await repairWith("changeRecoveryKey");
    // default_key_malformed → changeRecoveryKey.
    await c.setAccountData(DEFAULT_KEY, { key: 5 });
    await expectRepair(c, DEFAULT_KEY, "default_key_malformed", "changeRecoveryKey");
    await repairWith("changeRecoveryKey");
    // key_missing → changeRecoveryKey.
    await c.setAccountData(`m.secret_storage.key.${await keyId()}`, {});
    await expectRepair(c, `m.secret_storage.key.${await keyId()}`, "key_missing", "changeRecoveryKey");
    await repairWith("changeRecoveryKey");
    // key_malformed → changeRecoveryKey.
    await c.setAccountData(`m.secret_storage.key.${await keyId()}`, {
      algorithm: "m.secret_storage.v1.aes-hmac-sha2",
      iv: "short",
      mac: "x",
    });
    await expectRepair(c, `m.secret_storage.key.${await keyId()}`, "key_malformed", "changeRecoveryKey");
    await repairWith("changeRecoveryKey");

    // On a device that holds nothing, a broken key can only be reset.
    const fresh = await fixtureDevice(fx, alice, "new");
    await c.setAccountData(DEFAULT_KEY, {});
    await expectRepair(fresh.client, DEFAULT_KEY, "no_default_key", "resetIdentity");
    await assert.rejects(
      fresh.client.crypto.recovery.changeRecoveryKey(),
      (e: unknown) => e instanceof RecoveryError && e.code === "IDENTITY_NOT_HELD",
    );
    const reset = await fresh.client.crypto.recovery.resetIdentity({ auth: { password: "pw" } });
    await expectEnabled(fresh.client, reset.recoveryKey);
  });

  it("a partial setup left by another client (secrets, no identity) is named and reset", async () => {
    const { client } = await fixtureUser(fx, "rx");
    const ss = client.crypto.secretStorage;
    const { key } = await ss.createKey();
    const seed = () =>
      Buffer.from(crypto.getRandomValues(new Uint8Array(32)))
        .toString("base64")
        .replace(/=+$/, "");
    for (const name of [MASTER, SSK, "m.cross_signing.user_signing", BACKUP])
      await ss.store(name, seed(), [key]);
    const status = await client.crypto.recovery.status();
    assert.equal(status.state, "incomplete");
    assert.deepEqual(
      status.missing.map((m) => [m.name, m.problem, m.repair]),
      [
        [MASTER, "identity_missing", "resetIdentity"],
        [BACKUP, "backup_missing", "resetIdentity"],
      ],
    );
    const reset = await client.crypto.recovery.resetIdentity({ auth: { password: "pw" } });
    await expectEnabled(client, reset.recoveryKey);
  });

  it("enable on an account whose identity this device does not hold names recover or reset", async () => {
    const { alice } = await enabledAccount("rn");
    const fresh = await fixtureDevice(fx, alice, "new");
    await assert.rejects(
      fresh.client.crypto.recovery.enable(),
      (e: unknown) => e instanceof RecoveryError && e.code === "IDENTITY_NOT_HELD" && e.repair === "recover",
    );
    assert.deepEqual(await (await fixtureUser(fx, "rd")).client.crypto.recovery.status(), {
      state: "disabled",
      missing: [],
    });
  });
});
