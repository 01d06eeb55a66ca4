// A new device of ours asks for secrets before the device holding them trusts it: the request is
// held. The new device is then verified through our cross-signing (a third device of ours verifies
// it, or it sets itself up with the recovery key) and the holder learns so from a /keys/query: the
// held request is answered then, with no trust call on the holder. An unverified or blacklisted
// device is still never answered.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { refetchDevices, selfSignedDevice, signsItself } from "../test-support/cross-signed-devices.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { holdingBackupKey } from "../test-support/secret-requests.ts";
import { BACKUP_SECRET, CROSS_SIGNING_SELF_SIGNING_SECRET } from "./names.ts";

const ALICE = "@alice:example.org";

const secretSends = (hs: FakeHomeserver, to: string) =>
  hs.sentToDevice.filter((m) => m.eventType === "m.room.encrypted" && m.to === `${ALICE}|${to}`);

/** OLD holds the secrets; THIRD is cross-signed (it holds our keys too); NEW asks OLD, which holds the request. */
async function held() {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  const backupKey = await holdingBackupKey(old);
  const keys = await old.machine.exportCrossSigningKeys();
  const third = await selfSignedDevice(hs, ALICE, "THIRD", keys);
  const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
  await refetchDevices([old, fresh, third], ALICE);
  // NEW trusts OLD (so that it takes OLD's answers); OLD is told nothing about NEW.
  await fresh.machine.setDeviceTrust(ALICE, "OLD", "verified");
  await fresh.machine.requestSecrets([CROSS_SIGNING_SELF_SIGNING_SECRET, BACKUP_SECRET]);
  await fresh.flush();
  await old.sync();
  assert.equal(secretSends(hs, "NEW").length, 0, "NEW is not verified: its requests are held");
  // A /keys/query while NEW is still not cross-signed answers nothing.
  await old.machine.receiveKeysChanges([ALICE], []);
  await old.flush();
  assert.equal(secretSends(hs, "NEW").length, 0);
  return { hs, old, fresh, third, keys, backupKey };
}

/** NEW takes OLD's answers: the self-signing key imported, the backup key handed out. */
async function receivedBoth(fresh: TestClient, backupKey: string): Promise<void> {
  const result = await fresh.sync();
  assert.deepEqual(
    result.secrets.map((s) => [s.name, s.value === backupKey]),
    [[BACKUP_SECRET, true]],
  );
  assert.equal((await fresh.machine.crossSigningStatus()).privateKeys.selfSigning, true);
}

describe("a held secret request of a device of ours cross-signed later", () => {
  it("a third device verifies the new one: OLD answers once a /keys/query shows it cross-signed", async () => {
    const { hs, old, fresh, third, backupKey } = await held();
    const { request } = await third.machine.markDeviceVerified(ALICE, "NEW");
    assert.ok(request, "THIRD holds the self-signing key: NEW gets signed");
    await third.flush();
    // OLD learns it from the device-list change: no trust call on OLD.
    await old.sync();
    assert.equal(secretSends(hs, "NEW").length, 2);
    await receivedBoth(fresh, backupKey);
  });

  it("the new device sets itself up with the recovery key: OLD answers after the next /keys/query", async () => {
    const { hs, old, fresh, keys, backupKey } = await held();
    // What recovery gives NEW: our cross-signing keys (from secret storage). It signs itself.
    await signsItself(fresh, { selfSigning: keys.selfSigning as string, master: keys.master as string });
    assert.equal((await fresh.machine.crossSigningStatus()).deviceCrossSigned, true);
    await old.sync();
    assert.equal(secretSends(hs, "NEW").length, 2);
    const result = await fresh.sync();
    assert.deepEqual(
      result.secrets.map((s) => s.value === backupKey),
      [true],
    );
  });

  it("a device blacklisted meanwhile is not answered, cross-signed or not", async () => {
    const { hs, old, third } = await held();
    await old.machine.setDeviceTrust(ALICE, "NEW", "blacklisted");
    await third.machine.markDeviceVerified(ALICE, "NEW");
    await third.flush();
    await old.sync();
    assert.equal(secretSends(hs, "NEW").length, 0);
  });
});
