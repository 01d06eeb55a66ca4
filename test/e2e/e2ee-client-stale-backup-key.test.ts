// A new device asks our other devices for the backup key; the first to answer kept the key of a
// version replaced since (it made that version, and another device made the current one). Its
// answer must not use up the request: the device holding the current key, answering after it,
// still gives this device the backup. Two Keyroom clients answer in turn through the devserver.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type Logger, MatrixClient, type VerificationRequest } from "../../src/client/index.ts";
import { budget } from "../support/budget.ts";
import { devServerFixture, keyroomDevice, newUser, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-stale-backup-");

/** Sync rounds the old device and the new one get to exchange the answers (each a few suffice). */
const MAX_ROUNDS = 8;

function nextRequest(client: MatrixClient): Promise<VerificationRequest> {
  return new Promise((resolve) => {
    const off = client.on("verification.request", (r) => {
      off();
      resolve(r);
    });
  });
}

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const b = budget(20_000);
  while (!(await check())) {
    if (b.over()) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A logger keeping the warnings' messages (never their objects: nothing there to look at). */
function warnings(): { logger: Logger; seen: string[] } {
  const seen: string[] = [];
  const noop = () => {};
  return {
    seen,
    logger: { debug: noop, info: noop, error: noop, warn: (_o, msg) => void seen.push(msg ?? "") },
  };
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

    const log = warnings();
    const fresh = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      logger: log.logger,
      encryption: { store: { directory: join(fx.dir, uniq("fresh")) } },
    });
    fx.open.push(fresh);
    await fresh.login({ user: old.name, password: "pw" });

    // The new device and the stale one verify each other with SAS: the new device asks all our
    // devices for the secrets it lacks, and the stale one answers first (the old one is offline).
    await stale.client.startSync();
    await fresh.startSync();
    try {
      const incoming = nextRequest(stale.client);
      const outgoing = await fresh.requestVerification(fresh.userId, stale.client.deviceId as string);
      const request = await incoming;
      await request.accept();
      await outgoing.waitFor((s) => s.phase === "ready");
      await outgoing.startSas();
      await Promise.all([
        outgoing.waitFor((s) => s.sas?.decimals !== undefined),
        request.waitFor((s) => s.sas?.decimals !== undefined),
      ]);
      await Promise.all([outgoing.confirm(), request.confirm()]);
      await Promise.all([outgoing.finished(), request.finished()]);
      await until("the stale key to be refused", () =>
        log.seen.includes("the backup key another device sent was not used"),
      );
    } finally {
      await stale.client.stopSync();
      await fresh.stopSync();
    }
    assert.equal((await fresh.crypto.backup.status({ check: false })).hasKey, false);

    // The new device is told the old one is ours; the old device comes online, learns the new
    // device's keys, is told it is ours, and answers the requests still open.
    await fresh.setDeviceTrust(fresh.userId, old.client.deviceId as string, "verified");
    await old.client.syncOnce({ timeoutMs: 0 });
    await old.client.setDeviceTrust(old.client.userId, fresh.deviceId as string, "verified");
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if ((await fresh.crypto.backup.status({ check: false })).hasKey) break;
      await old.client.syncOnce({ timeoutMs: 0 });
      await fresh.syncOnce({ timeoutMs: 0 });
    }
    const status = await fresh.crypto.backup.status({ check: false });
    assert.equal(status.version, version);
    assert.equal(status.hasKey, true, "the current key, answered after the stale one, was taken");
    // The old device's cross-signing keys came too: the request for them was never at stake.
    assert.equal((await fresh.getCrossSigningStatus()).privateKeys.selfSigning, true);
  });
});
