// Where cross-signing trust comes from, against the fake homeserver: a user-signing signature on
// another user's master key counts only from our own trusted identity; an old master private key
// does not make a new (reset) identity trusted; a listing of our device under someone else's
// signed keys does not make our device cross-signed; verifying a user verifies the master key that
// was checked, and accepting a changed identity accepts the key that was shown, not one that
// replaced either in between.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";

async function query(client: TestClient, userId: string): Promise<void> {
  await client.machine.updateTrackedUsers([userId]);
  await client.machine.receiveKeysChanges([userId], []);
  await client.flush();
}

async function aliceAndBob(): Promise<{ hs: FakeHomeserver; alice: TestClient; bob: TestClient }> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" });
  return { hs, alice, bob };
}

describe("cross-signing trust", () => {
  it("our user-signing signature on Bob's master key counts only once this device trusts our identity", async () => {
    const { hs, alice, bob } = await aliceAndBob();
    await alice.bootstrapCrossSigning();
    await bob.bootstrapCrossSigning();
    await query(alice, BOB);
    await alice.machine.markUserVerified(BOB);
    await alice.flush(); // the user-signing signature reaches the server

    const alice2 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" });
    await query(alice2, ALICE);
    await query(alice2, BOB);
    let identity = await alice2.machine.getUserIdentity(BOB);
    assert.equal(identity?.state, "pinned");
    assert.equal(identity?.verified, false);
    assert.equal((await alice2.machine.getUserDevices(BOB))[0]?.verified, false);

    await alice2.machine.markUserVerified(ALICE); // this device now trusts our master key
    identity = await alice2.machine.getUserIdentity(BOB);
    assert.equal(identity?.verified, true);
    assert.equal((await alice2.machine.getUserDevices(BOB))[0]?.verified, true);
  });

  it("the master private key of an identity reset elsewhere does not make the new identity trusted", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
    await alice.bootstrapCrossSigning();
    assert.equal((await alice.machine.crossSigningStatus()).verified, true);
    const alice2 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" });
    await alice2.bootstrapCrossSigning(true); // the identity is replaced from another device
    await alice.sync();
    const status = await alice.machine.crossSigningStatus();
    assert.equal(status.masterKey, (await alice2.machine.crossSigningStatus()).masterKey);
    assert.equal(status.privateKeys.master, false);
    assert.equal(status.verified, false);
    const device2 = (await alice.machine.getUserDevices(ALICE)).find((d) => d.deviceId === "ALICE2");
    assert.equal(device2?.crossSigned, true);
    assert.equal(device2?.verified, false);
  });

  it("our device listed with another device's signed keys is not taken as our device cross-signed", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
    await alice.bootstrapCrossSigning();
    const alice3 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE3" });
    await query(alice3, ALICE);
    assert.equal((await alice3.machine.crossSigningStatus()).deviceCrossSigned, false);
    // The server lists ALICE3 with ALICE1's keys, which carry our self-signing key's signature.
    const signed = hs.device(ALICE, "ALICE1").keys;
    assert.ok(signed);
    hs.forgeDeviceKeys(ALICE, "ALICE3", signed);
    await query(alice3, ALICE);
    assert.equal((await alice3.machine.crossSigningStatus()).deviceCrossSigned, false);
  });

  it("verifying a user with the master key that was checked refuses a key that replaced it", async () => {
    const { alice, bob } = await aliceAndBob();
    await alice.bootstrapCrossSigning();
    await bob.bootstrapCrossSigning();
    await query(alice, BOB);
    const checked = (await alice.machine.getUserIdentity(BOB))?.masterKey ?? "";
    await bob.bootstrapCrossSigning(true); // the server now serves another identity
    await query(alice, BOB);
    await assert.rejects(alice.machine.markUserVerified(BOB, { masterKey: checked }), {
      name: "CrossSigningError",
      code: "IDENTITY_CHANGED",
    });
    const identity = await alice.machine.getUserIdentity(BOB);
    assert.notEqual(identity?.masterKey, checked);
    assert.equal(identity?.verified, false, "the key nobody checked is not verified");
    const current = identity?.masterKey ?? "";
    assert.equal((await alice.machine.markUserVerified(BOB, { masterKey: current })).identity.verified, true);
  });

  it("accepting a changed identity with the master key that was shown refuses a key that replaced it", async () => {
    const { alice, bob } = await aliceAndBob();
    await bob.bootstrapCrossSigning();
    await query(alice, BOB);
    await bob.bootstrapCrossSigning(true);
    await query(alice, BOB);
    const shown = await alice.machine.getUserIdentity(BOB);
    assert.equal(shown?.changed, true);
    await bob.bootstrapCrossSigning(true); // changed again before the person clicked
    await query(alice, BOB);
    await assert.rejects(alice.machine.acceptIdentityChange(BOB, { masterKey: shown?.masterKey ?? "" }), {
      name: "CrossSigningError",
      code: "IDENTITY_CHANGED",
    });
    const now = await alice.machine.getUserIdentity(BOB);
    assert.equal(now?.changed, true, "the key nobody was shown is not accepted");
    const accepted = await alice.machine.acceptIdentityChange(BOB, { masterKey: now?.masterKey ?? "" });
    assert.equal(accepted.changed, false);
  });
});
