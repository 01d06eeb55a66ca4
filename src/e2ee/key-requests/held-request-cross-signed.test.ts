// A new device of ours asks for a room key before the device holding it trusts it: the request is
// held. The new device is then verified through our cross-signing (a third device of ours verifies
// it, or it sets itself up with the recovery key) and the holder learns so from a /keys/query: the
// held request is answered then, with no trust call on the holder. A device not cross-signed stays
// held, and a blacklisted one is never answered.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { refetchDevices, selfSignedDevice, signsItself } from "../test-support/cross-signed-devices.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const ROOM = "!room:example.org";

/** Olm messages OLD sent to NEW (the forwards). */
const forwardsFromOld = (hs: FakeHomeserver, old: TestClient) =>
  hs.sentToDevice.filter(
    (m) =>
      m.eventType === "m.room.encrypted" &&
      m.to === `${ALICE}|NEW` &&
      m.content.sender_key === old.machine.identityKeys.curve25519,
  );

/**
 * OLD holds our cross-signing keys and the only copy of a room key; THIRD is cross-signed (it holds
 * our keys too); NEW asks for the room key and OLD holds the request.
 */
async function held() {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  // Sent while OLD is our only device: no other device of ours has the key.
  const event = await old.sendMessage(ROOM, joined(ALICE), "before NEW existed");
  const keys = await old.machine.exportCrossSigningKeys();
  const third = await selfSignedDevice(hs, ALICE, "THIRD", keys);
  const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
  await refetchDevices([old, fresh, third], ALICE);
  await assert.rejects(fresh.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
  await fresh.flush(); // the key request goes out
  const seen = await old.sync();
  assert.equal(seen.heldKeyRequests.length, 1, "NEW is not verified: its request is held");
  assert.equal(forwardsFromOld(hs, old).length, 0);
  // A /keys/query while NEW is still not cross-signed answers nothing.
  await old.machine.receiveKeysChanges([ALICE], []);
  await old.flush();
  assert.equal(forwardsFromOld(hs, old).length, 0, "NEW is not cross-signed: nothing is forwarded");
  assert.equal(old.machine.heldKeyRequests().length, 1, "NEW is not cross-signed: the request stays held");
  return { hs, old, fresh, third, keys, event };
}

/** OLD holds our cross-signing keys and the only copy of a room key; NEW signs itself before it asks. */
async function selfSignedBeforeAsking() {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  const event = await old.sendMessage(ROOM, joined(ALICE), "before NEW existed");
  const fresh = await selfSignedDevice(hs, ALICE, "NEW", await old.machine.exportCrossSigningKeys());
  return { hs, old, fresh, event };
}

describe("a held room-key request of a device of ours cross-signed later", () => {
  it("a third device verifies the new one: OLD forwards once a /keys/query shows it cross-signed", async () => {
    const { hs, old, fresh, third } = await held();
    const { request } = await third.machine.markDeviceVerified(ALICE, "NEW");
    assert.ok(request, "THIRD holds the self-signing key: NEW gets signed");
    await third.flush();
    // OLD learns it from the device-list change: no trust call on OLD.
    await old.sync();
    assert.equal(forwardsFromOld(hs, old).length, 1);
    assert.deepEqual(old.machine.heldKeyRequests(), []);
    await fresh.machine.setDeviceTrust(ALICE, "OLD", "verified"); // NEW takes OLD's forwards
    const synced = await fresh.sync();
    assert.equal(synced.redecrypted[0]?.content.body, "before NEW existed");
  });

  it("the new device sets itself up with the recovery key: OLD forwards after the next /keys/query", async () => {
    const { hs, old, fresh, keys } = await held();
    // What recovery gives NEW: our cross-signing keys (from secret storage). It signs itself.
    await signsItself(fresh, { selfSigning: keys.selfSigning as string, master: keys.master as string });
    assert.equal((await fresh.machine.crossSigningStatus()).deviceCrossSigned, true);
    await old.sync();
    assert.equal(forwardsFromOld(hs, old).length, 1);
  });

  it("a request of a device already cross-signed when it arrives is answered at once", async () => {
    const { hs, old, fresh, event } = await selfSignedBeforeAsking();
    await old.sync(); // OLD learns NEW's keys and signature before NEW asks
    await assert.rejects(fresh.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
    await fresh.flush();
    const seen = await old.sync();
    assert.deepEqual(seen.heldKeyRequests, [], "a cross-signed device is verified: nothing is held");
    assert.equal(forwardsFromOld(hs, old).length, 1);
  });

  it("a request of a device not known yet is answered once its keys, cross-signed, are fetched", async () => {
    const { hs, old, fresh, event } = await selfSignedBeforeAsking();
    await assert.rejects(fresh.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
    await fresh.flush();
    // OLD has not fetched NEW's keys: the request is held, and the keys are fetched.
    const seen = await old.machine.receiveSyncChanges({ ...hs.syncFor(ALICE, "OLD"), nextBatch: "x1" });
    assert.equal(seen.heldKeyRequests.length, 1);
    assert.equal(forwardsFromOld(hs, old).length, 0);
    await old.flush(); // the /keys/query shows NEW cross-signed: the request is answered
    assert.equal(forwardsFromOld(hs, old).length, 1);
    assert.deepEqual(old.machine.heldKeyRequests(), []);
  });

  it("a device blacklisted meanwhile is not answered, cross-signed or not", async () => {
    const { hs, old, third } = await held();
    await old.machine.setDeviceTrust(ALICE, "NEW", "blacklisted");
    await third.machine.markDeviceVerified(ALICE, "NEW");
    await third.flush();
    await old.sync();
    assert.equal(forwardsFromOld(hs, old).length, 0);
  });
});
