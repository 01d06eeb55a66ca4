// Dehydration running while the recovery key or the identity is replaced. The schedule sealed on
// under its old dehydration key, which the new secret storage key does not open: another login then
// stored a key of its own and the logins replaced each other's devices; after `resetIdentity()` the
// device on the server stayed signed by the old self-signing key (no one shares keys with it) until
// the next rotation, a week later. Now a fresh device replaces it at once, under a fresh key stored
// under the new secret storage key (and signed by the new self-signing key).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DehydrationError } from "../../src/client/index.ts";
import type { UnlockedSecretStorageKey } from "../../src/e2ee/index.ts";
import { devServerFixture, encryptedClient, fixtureUser, type TestClient } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-dehydration-keys-replaced-");

/** Bob with recovery set up and dehydration running (its key from secret storage). */
async function dehydrating(prefix: string): Promise<TestClient & { storageKey: UnlockedSecretStorageKey }> {
  const bob = await fixtureUser(fx, prefix);
  await bob.client.bootstrapCrossSigning();
  const { recoveryKey } = await bob.client.crypto.recovery.enable();
  const key = await bob.client.crypto.secretStorage.unlock({ recoveryKey });
  await bob.client.crypto.dehydration.start({ secretStorageKey: key });
  assert.equal(bob.client.crypto.dehydration.running, true);
  return Object.assign(bob, { storageKey: key });
}

describe("dehydration when the keys are replaced", () => {
  it("after resetIdentity() the device on the server is signed by the new self-signing key and opens with the new stored key", async () => {
    const alice = await fixtureUser(fx, "dkra");
    const bob = await dehydrating("dkrb");
    const bobId = bob.client.userId;

    const reset = await bob.client.crypto.recovery.resetIdentity({ auth: { password: "pw" } });
    const storageKey = await bob.client.crypto.secretStorage.unlock({ recoveryKey: reset.recoveryKey });
    // Stored under the new secret storage key (no new key created here: `create` is not asked).
    const pickleKey = await bob.client.crypto.dehydration.keyFromSecretStorage(storageKey);
    const onServer = await bob.client.crypto.dehydration.rehydrate(pickleKey);
    assert.ok(onServer !== undefined, "the key in the new secret storage opens the device on the server");

    // Others (who learn Bob's new identity) see it cross-signed: they share room keys with it.
    await alice.client.crypto.refreshUserKeys([bobId]);
    const identity = await alice.client.crypto.getUserIdentity(bobId);
    assert.equal(identity?.masterKey, (await bob.client.crypto.getUserIdentity(bobId))?.masterKey);
    const devices = await alice.client.getUserDevices(bobId);
    const dehydrated = devices.find((d) => d.deviceId === onServer.deviceId);
    assert.ok(dehydrated, "Alice sees Bob's dehydrated device");
    assert.equal(dehydrated.crossSigned, true, "signed by Bob's new self-signing key");
    assert.equal(devices.filter((d) => d.deviceId !== bob.client.deviceId).length, 1);
    bob.client.crypto.dehydration.stop();
  });

  it("after changeRecoveryKey() a new login with the new recovery key rehydrates the current device and keeps its key", async () => {
    const bob = await dehydrating("dkrc");
    const changed = await bob.client.crypto.recovery.changeRecoveryKey();
    assert.equal(bob.client.crypto.dehydration.running, true, "the schedule goes on");

    const second = encryptedClient(fx.hs, join(fx.dir, `${bob.name}-2`));
    fx.open.push(second);
    await second.login({ user: bob.client.userId, password: "pw" });
    await second.crypto.recovery.recover({ recoveryKey: changed.recoveryKey });
    const storageKey = await second.crypto.secretStorage.unlock({ recoveryKey: changed.recoveryKey });
    const reported: unknown[] = [];
    second.on("error", (e) => {
      reported.push(e);
    });
    // What secret storage holds before this login starts (nothing under the new key, without the fix).
    const pickleKey = await second.crypto.dehydration.keyFromSecretStorage(storageKey).catch(() => undefined);
    const found = await second.crypto.dehydration.start({ secretStorageKey: storageKey });
    second.crypto.dehydration.stop();
    assert.ok(found !== undefined, "the device Bob's schedule uploaded opens with the stored key");
    assert.ok(
      !reported.some((e) => e instanceof DehydrationError),
      "no device sealed under another key was found and replaced",
    );
    // The second login sealed its device under the same stored key, not one of its own.
    assert.ok(pickleKey !== undefined);
    assert.deepEqual(await second.crypto.dehydration.keyFromSecretStorage(storageKey), pickleKey);
    const now = await bob.client.crypto.dehydration.rehydrate(pickleKey);
    assert.ok(now !== undefined && now.deviceId !== found.deviceId, "the second login's device replaced it");
    bob.client.crypto.dehydration.stop();
  });

  it("after bootstrapCrossSigning({ reset }) the device is replaced by one signed by the new key, under the same stored key", async () => {
    const alice = await fixtureUser(fx, "dkrd");
    const bob = await dehydrating("dkre");
    const bobId = bob.client.userId;
    await alice.client.crypto.refreshUserKeys([bobId]);
    const before = await alice.client.getUserDevices(bobId);
    const old = before.find((d) => d.deviceId !== bob.client.deviceId);
    assert.ok(old);

    await bob.client.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    await alice.client.crypto.refreshUserKeys([bobId]);
    const devices = await alice.client.getUserDevices(bobId);
    const dehydrated = devices.filter((d) => d.deviceId !== bob.client.deviceId);
    assert.equal(dehydrated.length, 1);
    assert.notEqual(dehydrated[0]?.deviceId, old.deviceId, "a new device replaced the old one");
    assert.equal(dehydrated[0]?.crossSigned, true, "signed by Bob's new self-signing key");
    const pickleKey = await bob.client.crypto.dehydration.keyFromSecretStorage(bob.storageKey);
    const onServer = await bob.client.crypto.dehydration.rehydrate(pickleKey);
    assert.equal(onServer?.deviceId, dehydrated[0]?.deviceId, "sealed under the stored key");
    bob.client.crypto.dehydration.stop();
  });
});
