// Dehydration while the default secret storage key moves. `secretStorage.setDefaultKey(keyId)`
// left the dehydration key stored under the old key only while the schedule sealed on under it: a
// new login that opened the new default key found no key, made one of its own and replaced the
// device (the logins then replaced each other's). Now the opened key is given, and the schedule's
// key is stored under it too before the default moves; a key ID alone is refused while dehydration
// keeps its key in secret storage.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DehydrationError, type FetchLike, MatrixClient } from "../../src/client/index.ts";
import { deferred } from "../../src/client/test-support/held-sync.ts";
import { manualClock } from "../../src/client/test-support/manual-clock.ts";
import { encodeBase64, randomBytes } from "../../src/crypto/primitives/index.ts";
import { SecretStorageError } from "../../src/crypto/secret-storage/index.ts";
import type { UnlockedSecretStorageKey } from "../../src/e2ee/index.ts";
import { devServerFixture, encryptedClient, fixtureUser, uniq, until } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-dehydration-default-key-");

/**
 * A fetch that holds the next GET of the dehydrated device (start() rehydrating) once `hold()` was
 * called: `reached` resolves when it is held, and it goes on once `gate` is resolved.
 */
function heldRehydration() {
  let holding = false;
  const reached = deferred();
  const gate = deferred();
  const fetchImpl: FetchLike = async (url, init) => {
    if (holding && (init.method ?? "GET") === "GET" && new URL(url).pathname.endsWith("/dehydrated_device")) {
      holding = false;
      reached.resolve();
      await gate.promise;
    }
    return fetch(url, init);
  };
  const hold = () => {
    holding = true;
  };
  return { reached, gate, fetchImpl, hold };
}

/** Cross-signing and recovery set up; the opened default secret storage key. */
async function withRecovery(client: MatrixClient): Promise<UnlockedSecretStorageKey> {
  await client.bootstrapCrossSigning();
  const { recoveryKey } = await client.crypto.recovery.enable();
  return client.crypto.secretStorage.unlock({ recoveryKey });
}

/**
 * A new login of `userId` that opens the default secret storage key with `recoveryKey` and reads
 * the dehydration key there: the device on the server it opens, or undefined when there is none.
 */
async function rehydrateElsewhere(userId: string, recoveryKey: string): Promise<string | undefined> {
  const other = encryptedClient(fx.hs, join(fx.dir, uniq("other")));
  fx.open.push(other);
  await other.login({ user: userId, password: "pw" });
  const storageKey = await other.crypto.secretStorage.unlock({ recoveryKey });
  const pickleKey = await other.crypto.dehydration.keyFromSecretStorage(storageKey);
  return (await other.crypto.dehydration.rehydrate(pickleKey))?.deviceId;
}

/** Where the dehydration key is kept in secret storage (MSC3814). */
const DEHYDRATION_SECRET = "org.matrix.msc3814";

const badArgument = (e: unknown) => e instanceof SecretStorageError && e.code === "BAD_ARGUMENT";

/**
 * A new user whose dehydration runs (a minute's period on a manual clock) with its key in secret
 * storage under the default key, its account data synced once; the warnings it logs.
 */
async function dehydrating(prefix: string): Promise<{
  bob: MatrixClient;
  clock: ReturnType<typeof manualClock>;
  warnings: string[];
  recoveryKey: string;
  storageKey: UnlockedSecretStorageKey;
}> {
  const clock = manualClock();
  const warnings: string[] = [];
  const name = uniq(prefix);
  const bob = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    clock,
    logger: {
      debug: () => {},
      info: () => {},
      warn: (_obj, msg) => void warnings.push(msg ?? ""),
      error: () => {},
    },
    encryption: { store: { directory: join(fx.dir, name) } },
  });
  fx.open.push(bob);
  await bob.register({ username: name, password: "pw" });
  await bob.bootstrapCrossSigning();
  const { recoveryKey } = await bob.crypto.recovery.enable();
  const storageKey = await bob.crypto.secretStorage.unlock({ recoveryKey });
  await bob.crypto.dehydration.start({ secretStorageKey: storageKey, periodMs: 60_000 });
  await bob.syncOnce({ timeoutMs: 0 }); // its own account data, as it stands
  return { bob, clock, warnings, recoveryKey, storageKey };
}

/** Another login of `userId` (its encryption on, nothing else done). */
async function otherLogin(userId: string): Promise<MatrixClient> {
  const other = encryptedClient(fx.hs, join(fx.dir, uniq("other")));
  fx.open.push(other);
  await other.login({ user: userId, password: "pw" });
  return other;
}

describe("dehydration when the default secret storage key moves", () => {
  it("after setDefaultKey(key) a new login that opens the new default key rehydrates the schedule's device", async () => {
    const bob = await fixtureUser(fx, "ddka");
    const ss = bob.client.crypto.secretStorage;
    const oldKey = await withRecovery(bob.client);
    await bob.client.crypto.dehydration.start({ secretStorageKey: oldKey });
    const other = await ss.createKey({ setDefault: false });

    // The key ID alone: the dehydration key cannot be stored under it, and nothing changes.
    await assert.rejects(ss.setDefaultKey(other.keyId), badArgument);
    assert.equal(await ss.defaultKeyId(), oldKey.keyId);

    await ss.setDefaultKey(other.key);
    assert.equal(await ss.defaultKeyId(), other.keyId);
    assert.equal(bob.client.crypto.dehydration.running, true, "the schedule goes on");
    const found = await rehydrateElsewhere(bob.client.userId, other.recoveryKey);
    assert.ok(found !== undefined, "the key under the new default key opens the device on the server");
    // The old key still opens it too (setDefaultKey retires no key).
    assert.deepEqual(
      await bob.client.crypto.dehydration.keyFromSecretStorage(oldKey),
      await bob.client.crypto.dehydration.keyFromSecretStorage(other.key),
    );
    bob.client.crypto.dehydration.stop();
    // Without a schedule, the key ID alone is enough.
    await ss.setDefaultKey(oldKey.keyId);
    assert.equal(await ss.defaultKeyId(), oldKey.keyId);
  });

  it("changeRecoveryKey() while start() rehydrates: the schedule seals under the key stored under the new recovery key", async () => {
    const held = heldRehydration();
    const { reached, gate, fetchImpl } = held;
    const bob = await fixtureUser(fx, "ddkb", {}, fetchImpl);
    const oldKey = await withRecovery(bob.client);

    held.hold();
    const started = bob.client.crypto.dehydration.start({ secretStorageKey: oldKey });
    await reached.promise; // its key read (and stored), the rehydration waits
    const changed = await bob.client.crypto.recovery.changeRecoveryKey();
    gate.resolve();
    await started;
    assert.equal(bob.client.crypto.dehydration.running, true);
    const found = await rehydrateElsewhere(bob.client.userId, changed.recoveryKey);
    assert.ok(
      found !== undefined,
      "the key stored under the new recovery key opens the device on the server",
    );
    bob.client.crypto.dehydration.stop();
  });

  it("another login's changeRecoveryKey(): this login's schedule, which cannot read the new key, stops with a warning instead of sealing under the old one", async () => {
    const { bob, clock, warnings, recoveryKey, storageKey: oldKey } = await dehydrating("ddkd");

    // Bob's other login changes the recovery key: a fresh dehydration key under the new key only,
    // and a device sealed under it.
    const other = await otherLogin(bob.userId);
    await other.crypto.recovery.recover({ recoveryKey });
    await other.crypto.dehydration.start({ secretStorageKey: oldKey, rehydrate: false });
    const changed = await other.crypto.recovery.changeRecoveryKey();
    other.crypto.dehydration.stop();

    await bob.syncOnce({ timeoutMs: 0 }); // the default key moved
    await until("the schedule stops", () => !bob.crypto.dehydration.running);
    assert.ok(warnings.some((w) => w.startsWith("dehydration stopped: another login moved the default")));
    clock.wake(); // a rotation would be due: none runs
    assert.equal(clock.sleeping(), 0);
    const found = await rehydrateElsewhere(bob.userId, changed.recoveryKey);
    assert.ok(found !== undefined, "the device on the server opens with the key under the new default key");
  });

  it("another login removes the default secret storage key: this login's schedule stops with a warning", async () => {
    const { bob, clock, warnings } = await dehydrating("ddke");
    const other = await otherLogin(bob.userId);
    await other.setAccountData("m.secret_storage.default_key", {}); // recovery turned off there

    await bob.syncOnce({ timeoutMs: 0 }); // the default key removed
    await until("the schedule stops", () => !bob.crypto.dehydration.running);
    assert.ok(warnings.some((w) => w.startsWith("dehydration stopped: another login removed the default")));
    clock.wake(); // a rotation would be due: none runs
    assert.equal(clock.sleeping(), 0);
  });

  it("another login stores a fresh dehydration key under the same default key (moved away and back, or made anew): this login's next rotation seals under it", async () => {
    const { bob, clock, recoveryKey } = await dehydrating("ddkf");
    const other = await otherLogin(bob.userId);
    await other.crypto.recovery.recover({ recoveryKey });
    const storageKey = await other.crypto.secretStorage.unlock({ recoveryKey });
    const fresh = randomBytes(32);
    await other.crypto.secretStorage.store(DEHYDRATION_SECRET, encodeBase64(fresh), [storageKey], {
      replace: true,
    });
    await other.crypto.dehydration.create(fresh);

    clock.wake(); // Bob's rotation, with no sync since
    await until("the rotation is done", () => clock.sleeping() === 1);
    assert.equal(bob.crypto.dehydration.running, true);
    const found = await rehydrateElsewhere(bob.userId, recoveryKey);
    assert.ok(found !== undefined, "the device on the server opens with the key stored now");
  });

  it("another login's changeRecoveryKey() while start() rehydrates (no sync seen): start() uploads nothing under the old key, and the schedule stops", async () => {
    const held = heldRehydration();
    const { reached, gate, fetchImpl } = held;
    const bob = await fixtureUser(fx, "ddkg", {}, fetchImpl);
    const reported: unknown[] = [];
    bob.client.on("error", (e) => void reported.push(e));
    await bob.client.bootstrapCrossSigning();
    const { recoveryKey } = await bob.client.crypto.recovery.enable();
    const oldKey = await bob.client.crypto.secretStorage.unlock({ recoveryKey });

    held.hold();
    const started = bob.client.crypto.dehydration.start({ secretStorageKey: oldKey });
    await reached.promise; // its key read (and stored), the rehydration waits
    const other = await otherLogin(bob.client.userId);
    await other.crypto.recovery.recover({ recoveryKey });
    await other.crypto.dehydration.start({ secretStorageKey: oldKey, rehydrate: false });
    const changed = await other.crypto.recovery.changeRecoveryKey();
    other.crypto.dehydration.stop();
    gate.resolve();
    await started;

    assert.equal(bob.client.crypto.dehydration.running, false);
    // The device the rehydration found is the other login's, sealed under the fresh key.
    assert.ok(reported.every((e) => e instanceof DehydrationError && e.code === "WRONG_KEY"));
    const found = await rehydrateElsewhere(bob.client.userId, changed.recoveryKey);
    assert.ok(found !== undefined, "the device on the server opens with the key under the new default key");
  });

  it("start() with a secret storage key opened before the default moved is refused, and stores nothing under it", async () => {
    const bob = await fixtureUser(fx, "ddkc");
    const oldKey = await withRecovery(bob.client);
    await bob.client.crypto.recovery.changeRecoveryKey(); // elsewhere, say: this login still holds the old key
    await assert.rejects(
      bob.client.crypto.dehydration.start({ secretStorageKey: oldKey }),
      (e: unknown) => e instanceof DehydrationError && e.code === "BAD_ARGUMENT",
    );
    assert.equal(bob.client.crypto.dehydration.running, false);
    await assert.rejects(
      bob.client.crypto.dehydration.keyFromSecretStorage(oldKey),
      (e: unknown) => e instanceof SecretStorageError && e.code === "SECRET_MISSING",
    );
  });
});
