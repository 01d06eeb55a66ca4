// Recovery between Keyroom and matrix-js-sdk (Rust crypto: matrix-sdk-crypto-wasm) through the
// devserver, both ways: js-sdk sets up secret storage, cross-signing and a key backup as Element
// does and chats; a new Keyroom device recovers with the recovery key, js-sdk sees it cross-signed,
// and it reads the history from the backup. Then Keyroom enables recovery and a new js-sdk device
// restores with Keyroom's recovery key and reads Keyroom's history.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { jsSdkDevice } from "../support/peers/jssdk-devices.ts";
import { devServerFixture, keyroomDevice, texts, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-recovery-jssdk-");

describe("recovery with matrix-js-sdk (devserver)", () => {
  it("js-sdk sets recovery up; a new Keyroom device recovers, is cross-signed, reads the history", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("jsrec");
    const js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    const recoveryKey = await js.bootstrapSecretStorage();
    const roomId = await js.createRoom({ encrypted: true, name: "js history" });
    const sent = [await js.sendText(roomId, "first from js"), await js.sendText(roomId, "second from js")];
    assert.equal(sent.length, 2);
    await js.waitForKeyBackupUploaded();

    const kr = await keyroomDevice(fx, name, "login");
    await kr.client.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(texts(kr, roomId), []);
    const status = await kr.client.crypto.recovery.status();
    assert.equal(status.state, "enabled", JSON.stringify(status));

    const result = await kr.client.crypto.recovery.recover({ recoveryKey });
    assert.equal(result.crossSigned, true);
    assert.equal(typeof result.backupVersion, "string");
    assert.ok(result.restored >= 1);
    assert.deepEqual(result.repaired, []);
    assert.deepEqual(texts(kr, roomId).sort(), ["first from js", "second from js"]);
    assert.equal((await kr.client.getCrossSigningStatus()).verified, true);
    // Keyroom trusts js-sdk's backup and uploads to it: nothing replaced it.
    const backup = await kr.client.crypto.backup.status();
    assert.equal(backup.version, result.backupVersion);
    assert.equal(backup.trusted, true);
    // js-sdk sees the Keyroom device cross-signed by the shared identity.
    await js.waitForDeviceStatus(js.userId, kr.client.deviceId as string, (s) => s.crossSigningVerified);
  });

  it("js-sdk sets recovery up with a passphrase (Element's security phrase); Keyroom recovers with it", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("jspp");
    const js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    await js.bootstrapSecretStorage({ passphrase: "a security phrase from Element" });
    const roomId = await js.createRoom({ encrypted: true, name: "phrase" });
    await js.sendText(roomId, "behind a phrase");
    await js.waitForKeyBackupUploaded();

    const kr = await keyroomDevice(fx, name, "login");
    await kr.client.syncOnce({ timeoutMs: 0 });
    const described = await kr.client.crypto.secretStorage.describeKey();
    assert.equal(described.passphrase?.algorithm, "m.pbkdf2");
    const result = await kr.client.crypto.recovery.recover({ passphrase: "a security phrase from Element" });
    assert.equal(result.crossSigned, true);
    assert.deepEqual(texts(kr, roomId), ["behind a phrase"]);
  });

  it("js-sdk secret storage without a key backup: Keyroom's recover makes one, js-sdk then uses it", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("jsnb");
    const js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    const recoveryKey = await js.bootstrapSecretStorage({ backup: false });
    const kr = await keyroomDevice(fx, name, "login");
    const before = await kr.client.crypto.recovery.status();
    assert.deepEqual(
      before.missing.map((m) => [m.name, m.problem, m.repair]),
      [["m.megolm_backup.v1", "secret_missing", "recover"]],
    );
    const result = await kr.client.crypto.recovery.recover({ recoveryKey });
    assert.equal(result.crossSigned, true);
    assert.equal(typeof result.backupVersion, "string");
    assert.deepEqual(result.repaired, ["m.megolm_backup.v1"]);
    assert.deepEqual(await kr.client.crypto.recovery.status({ recoveryKey }), {
      state: "enabled",
      missing: [],
    });
    // js-sdk reads the new backup key from secret storage and trusts the version Keyroom signed.
    const crypto = js.client.getCrypto();
    assert.ok(crypto);
    await crypto.checkKeyBackupAndEnable(); // js-sdk learns of the new version first
    await crypto.loadSessionBackupPrivateKeyFromSecretStorage();
    const info = await crypto.checkKeyBackupAndEnable();
    assert.equal(info?.backupInfo.version, result.backupVersion);
    assert.equal(info?.trustInfo.trusted, true);
  });

  it("Keyroom enables recovery; a new js-sdk device restores with its recovery key and reads the history", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("krrec");
    const kr = await keyroomDevice(fx, name, "register");
    const roomId = await kr.client.createRoom({ name: "keyroom history", encrypted: true });
    await kr.client.syncOnce({ timeoutMs: 0 });
    const first = await kr.client.sendText(roomId, "first from keyroom");
    const { recoveryKey } = await kr.client.crypto.recovery.enable({ auth: { password: "pw" } });
    const second = await kr.client.sendText(roomId, "second from keyroom");
    await kr.client.syncOnce({ timeoutMs: 0 });
    await kr.client.crypto.backup.uploadPending();

    const js = await jsSdkDevice(fx, name, "login");
    const restored = await js.recoverWithRecoveryKey(recoveryKey);
    assert.ok(restored.imported >= 1, JSON.stringify(restored));
    for (const [id, body] of [
      [first, "first from keyroom"],
      [second, "second from keyroom"],
    ] as const) {
      const m = await js.waitForMessage(roomId, (m) => m.eventId === id && m.decrypted);
      assert.equal(m.body, body);
    }
    // js-sdk took the cross-signing keys from Keyroom's secret storage and is cross-signed.
    await js.waitForDeviceStatus(js.userId, js.deviceId, (s) => s.crossSigningVerified);
  });

  it("js-sdk resets the key backup: Keyroom switches to the version js-sdk signed, and its new keys reach it", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("jsreset");
    const js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    const recoveryKey = await js.bootstrapSecretStorage();
    const kr = await keyroomDevice(fx, name, "login");
    const errors: unknown[] = [];
    kr.client.on("error", (e) => void errors.push(e));
    const recovered = await kr.client.crypto.recovery.recover({ recoveryKey });

    // Element's "reset key backup": a new version with a new key, signed by the user's master key;
    // the new key goes to secret storage.
    const reset = await js.enableKeyBackup();
    assert.notEqual(reset.version, recovered.backupVersion);
    const roomId = await kr.client.createRoom({ name: "after the reset", encrypted: true });
    await kr.client.syncOnce({ timeoutMs: 0 });
    const sent = await kr.client.sendText(roomId, "sent after the reset");
    await kr.client.syncOnce({ timeoutMs: 0 });
    await kr.client.crypto.backup.uploadPending();
    const status = await kr.client.crypto.backup.status({ check: false });
    assert.deepEqual([status.version, status.stopped, status.uploading], [reset.version, undefined, true]);
    // Signed by js-sdk's device and the user's master key: either vouches for it, whichever Keyroom
    // checked first (the device once its keys are fetched).
    assert.ok(["master_key", "verified_device"].includes(status.trustedBy ?? ""), status.trustedBy);
    assert.equal(status.backedUp, status.total, "every key of Keyroom's in the new version");
    assert.deepEqual(errors, [], "a switch is not an error");

    // A new js-sdk device recovers (the new backup key from secret storage) and reads Keyroom's message.
    const fresh = await jsSdkDevice(fx, name, "login");
    await fresh.recoverWithRecoveryKey(recoveryKey);
    const m = await fresh.waitForMessage(roomId, (e) => e.eventId === sent && e.decrypted);
    assert.equal(m.body, "sent after the reset");
  });
});
