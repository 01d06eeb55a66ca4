// Secret sharing between a Keyroom device and a matrix-js-sdk device (Rust crypto) of the same user
// through the devserver, after SAS: the new device asks its verified sibling for the cross-signing
// keys and the backup key (`m.secret.request`), gets them over Olm (`m.secret.send`), and uses them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VerificationPhase, type Verifier } from "matrix-js-sdk/lib/crypto-api/index.js";
import { budget } from "../support/budget.ts";
import { PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { jsSdkDevice } from "../support/peers/jssdk-devices.ts";
import { jsPhase, nextJsRequest, nextKeyroomRequest, sasBoth } from "../support/peers/jssdk-verification.ts";
import { devServerFixture, keyroomDevice, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-gossip-jssdk-");

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const b = budget(30_000);
  while (!(await check())) {
    if (b.over()) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("secret sharing: Keyroom ↔ matrix-js-sdk (devserver)", () => {
  it("a new Keyroom device verified by js-sdk gets the cross-signing and backup keys from it", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("gsj");
    const js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    const { version } = await js.enableKeyBackup();
    const { client: kr } = await keyroomDevice(fx, name, "login");
    await kr.startSync();
    assert.equal((await kr.getCrossSigningStatus()).privateKeys.selfSigning, false);

    const incoming = nextJsRequest(js);
    const ours = await kr.requestVerification(kr.userId, js.deviceId);
    const theirs = await incoming;
    await theirs.accept();
    await ours.waitFor((s) => s.phase === "ready");
    await ours.startSas();
    await jsPhase(theirs, VerificationPhase.Started);
    await sasBoth(theirs.verifier as Verifier, ours);
    await jsPhase(theirs, VerificationPhase.Done);

    await until("the cross-signing keys from js-sdk", async () => {
      const s = await kr.getCrossSigningStatus();
      return s.privateKeys.master && s.privateKeys.selfSigning && s.privateKeys.userSigning;
    });
    await until(
      "this device to be cross-signed",
      async () => (await kr.getCrossSigningStatus()).deviceCrossSigned,
    );
    await until("the backup key from js-sdk", async () => (await kr.crypto.backup.status()).hasKey);
    assert.equal((await kr.crypto.backup.status()).version, version);
    await js.waitForDeviceStatus(js.userId, kr.deviceId as string, (s) => s.crossSigningVerified);
  });

  it("a new js-sdk device verified by Keyroom gets the cross-signing keys from it", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("gsk");
    const { client: kr } = await keyroomDevice(fx, name, "register");
    await kr.bootstrapCrossSigning();
    await kr.crypto.backup.createVersion();
    await kr.startSync();
    const js = await jsSdkDevice(fx, name, "login");
    await js.waitForDevices(kr.userId, (ids) => ids.includes(kr.deviceId as string));

    const incoming = nextKeyroomRequest(kr);
    const theirs = await js.client.getCrypto()?.requestDeviceVerification(kr.userId, kr.deviceId as string);
    assert.ok(theirs);
    const ours = await incoming;
    await ours.accept();
    await jsPhase(theirs, VerificationPhase.Ready);
    const verifier = await theirs.startVerification("m.sas.v1");
    await sasBoth(verifier, ours);
    await jsPhase(theirs, VerificationPhase.Done);

    const crypto = js.client.getCrypto();
    assert.ok(crypto);
    await until("js-sdk to hold the cross-signing keys", async () => {
      const s = await crypto.getCrossSigningStatus();
      return s.privateKeysCachedLocally.masterKey && s.privateKeysCachedLocally.selfSigningKey;
    });
    await js.waitForDeviceStatus(js.userId, js.deviceId, (s) => s.crossSigningVerified);
    await until(
      "js-sdk to hold the backup key",
      async () => (await crypto.getSessionBackupPrivateKey()) !== null,
    );
  });
});
