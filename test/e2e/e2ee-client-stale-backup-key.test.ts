// A new device asks our other devices for the backup key; the first to answer kept the key of a
// version replaced since (it made that version, and another device made the current one). Its
// answer must not use up the request: the device holding the current key, answering after it,
// still gives this device the backup. Two Keyroom clients answer in turn through the devserver.
// The other way round: the version the new device uses was replaced since it last checked, and
// the right key, refused against it, is taken once the device checks the server's version again.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type Logger, MatrixClient } from "../../src/client/index.ts";
import {
  devServerFixture,
  keyroomDevice,
  newUser,
  type TestClient,
  uniq,
  until,
  verifyWithSas,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-stale-backup-");

/** Sync rounds the old device and the new one get to exchange the answers (each a few suffice). */
const MAX_ROUNDS = 8;

/** A logger keeping the warnings' messages (never their objects: nothing there to look at). */
function warnings(): { logger: Logger; seen: string[] } {
  const seen: string[] = [];
  const noop = () => {};
  return {
    seen,
    logger: { debug: noop, info: noop, error: noop, warn: (_o, msg) => void seen.push(msg ?? "") },
  };
}

/** A new login of `old`'s user (not syncing), with the warnings it logs kept in `seen`. */
async function newDeviceOf(old: TestClient): Promise<{ fresh: MatrixClient; seen: string[] }> {
  const log = warnings();
  const fresh = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    logger: log.logger,
    encryption: { store: { directory: join(fx.dir, uniq("fresh")) } },
  });
  fx.open.push(fresh);
  await fresh.login({ user: old.name, password: "pw" });
  return { fresh, seen: log.seen };
}

/** `old` and `fresh` sync in turn (up to MAX_ROUNDS each) until `fresh` holds the backup key. */
async function syncUntilBackupKey(old: MatrixClient, fresh: MatrixClient): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if ((await fresh.crypto.backup.status({ check: false })).hasKey) return;
    await old.syncOnce({ timeoutMs: 0 });
    await fresh.syncOnce({ timeoutMs: 0 });
  }
}

describe("a stale backup key answered first (devserver)", () => {
  it("does not use up the request: the current key another device sends after it enables the backup", async () => {
    const old = await newUser(fx.hs, fx.dir, "sb");
    fx.open.push(old.client);
    await old.client.bootstrapCrossSigning();
    // The stale device makes a version, then the old device replaces it: the stale device keeps
    // the first version's key as the one in use (it checks the server's version once a process).
    const stale = await keyroomDevice(fx, old.name, "login");
    await stale.client.syncOnce({ timeoutMs: 0 });
    const { version: replaced } = await stale.client.crypto.backup.createVersion();
    const { version } = await old.client.crypto.backup.createVersion();
    assert.notEqual(version, replaced);

    const { fresh, seen } = await newDeviceOf(old);

    // The new device and the stale one verify each other with SAS: the new device asks all our
    // devices for the secrets it lacks, and the stale one answers first (the old one is offline).
    await stale.client.startSync();
    await fresh.startSync();
    try {
      await verifyWithSas(fresh, stale.client);
      await until("the stale key to be refused", () =>
        seen.includes("the backup key another device sent was not used"),
      );
    } finally {
      await stale.client.stopSync();
      await fresh.stopSync();
    }
    assert.equal((await fresh.crypto.backup.status({ check: false })).hasKey, false);

    // The new device is told the old one is ours; the old device comes online, learns the new
    // device's keys, is told it is ours, and answers the requests still open. (Both trust calls
    // are needed: the stale device holds no self-signing key, so nothing cross-signed either
    // device in the other's eyes. A device cross-signed meanwhile needs none: see the next test.)
    await fresh.setDeviceTrust(fresh.userId, old.client.deviceId as string, "verified");
    await old.client.syncOnce({ timeoutMs: 0 });
    await old.client.setDeviceTrust(old.client.userId, fresh.deviceId as string, "verified");
    await syncUntilBackupKey(old.client, fresh);
    const status = await fresh.crypto.backup.status({ check: false });
    assert.equal(status.version, version);
    assert.equal(status.hasKey, true, "the current key, answered after the stale one, was taken");
    // The old device's cross-signing keys came too: the request for them was never at stake.
    assert.equal((await fresh.getCrossSigningStatus()).privateKeys.selfSigning, true);
  });

  it("a version replaced since our last check: its key, refused against the old one, is taken after a check (no restart)", async () => {
    const old = await newUser(fx.hs, fx.dir, "rv");
    fx.open.push(old.client);
    await old.client.bootstrapCrossSigning();
    // A helper device gets our cross-signing keys from the old device (there is no backup yet):
    // it can verify the new device later, but never holds a backup key.
    const helper = await keyroomDevice(fx, old.name, "login");
    await old.client.startSync();
    await helper.client.startSync();
    try {
      await verifyWithSas(helper.client, old.client);
      await until("the helper to be cross-signed", async () => {
        const s = await helper.client.getCrossSigningStatus();
        return s.privateKeys.selfSigning && s.deviceCrossSigned;
      });
    } finally {
      await old.client.stopSync();
      await helper.client.stopSync();
    }
    const { version: first } = await old.client.crypto.backup.createVersion();

    const { fresh, seen } = await newDeviceOf(old);
    // The new device verifies the helper (the old one is offline): it asks all our devices for the
    // secrets it lacks; the helper gives the cross-signing keys, and nobody online the backup key.
    await helper.client.startSync();
    await fresh.startSync();
    try {
      await verifyWithSas(fresh, helper.client);
      await until("the new device to be cross-signed", async () => {
        const s = await fresh.getCrossSigningStatus();
        return s.privateKeys.selfSigning && s.deviceCrossSigned;
      });
    } finally {
      await helper.client.stopSync();
      await fresh.stopSync();
    }
    // The new device checks the server's version: the first one, signed by our master key, is
    // used without its key (the request for it stays open).
    let status = await fresh.crypto.backup.status();
    assert.equal(status.version, first);
    assert.equal(status.hasKey, false);

    // The old device replaces the version, then comes online: it learns the new device is
    // cross-signed (no trust call) and answers the open request with the new version's key.
    const { version } = await old.client.crypto.backup.createVersion();
    assert.notEqual(version, first);
    await syncUntilBackupKey(old.client, fresh);
    assert.ok(
      seen.includes(
        "refused a secret another device sent: not the current key; still waiting for another answer",
      ),
      "the new version's key was refused against the first version first",
    );
    status = await fresh.crypto.backup.status({ check: false });
    assert.equal(status.version, version, "the new version was adopted on the refusal");
    assert.equal(status.hasKey, true, "the refused key, judged again, was taken");
    assert.equal(status.trusted, true);
  });
});
