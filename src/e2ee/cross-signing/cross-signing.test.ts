import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecryptionError } from "../errors.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { CrossSigningError } from "./errors.ts";
import { isSignedBy } from "./keys.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!room:example.org";

async function setup() {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" });
  return { hs, alice, bob };
}

async function query(client: TestClient, userId: string): Promise<void> {
  await client.machine.updateTrackedUsers([userId]);
  await client.machine.receiveKeysChanges([userId], []);
  await client.flush();
}

describe("cross-signing", () => {
  it("bootstrap publishes three keys and signs our device; status says so", async () => {
    const { hs, alice } = await setup();
    await alice.bootstrapCrossSigning();
    const keys = hs.crossSigning.get(ALICE);
    assert.ok(keys?.master && keys.self_signing && keys.user_signing);
    const status = await alice.machine.crossSigningStatus();
    assert.equal(status.verified, true);
    assert.equal(status.deviceCrossSigned, true);
    assert.deepEqual(status.privateKeys, { master: true, selfSigning: true, userSigning: true });
    const identity = await alice.machine.getUserIdentity(ALICE);
    assert.equal(identity?.masterKey, status.masterKey);
    assert.equal(identity?.verified, true);
    // The server's copy of our device carries the self-signing key's signature.
    const device = hs.devices.get(ALICE)?.get("ALICE1")?.keys;
    const ssk = identity?.selfSigningKey as string;
    assert.ok(isSignedBy(device, ALICE, { userId: ALICE, usage: "self_signing", publicKey: ssk, json: {} }));
    // A second bootstrap has nothing to do; the keys survive a restart.
    assert.equal(await alice.machine.bootstrapCrossSigning(), undefined);
    await alice.restart();
    assert.equal((await alice.machine.crossSigningStatus()).verified, true);
  });

  it("another user's devices show cross-signed; verifying the user signs the master key", async () => {
    const { hs, alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    await bob.bootstrapCrossSigning();
    await query(bob, ALICE);
    let identity = await bob.machine.getUserIdentity(ALICE);
    assert.equal(identity?.state, "pinned");
    let [device] = await bob.machine.getUserDevices(ALICE);
    assert.equal(device?.crossSigned, true);
    assert.equal(device?.verified, false);

    const { request } = await bob.machine.markUserVerified(ALICE);
    assert.ok(request !== undefined);
    await bob.flush(); // the signature upload is offered until sent
    const master = hs.crossSigning.get(ALICE)?.master as { signatures?: Record<string, unknown> };
    assert.ok(master.signatures?.[BOB] !== undefined);
    identity = await bob.machine.getUserIdentity(ALICE);
    assert.equal(identity?.verified, true);
    [device] = await bob.machine.getUserDevices(ALICE);
    assert.equal(device?.verified, true);
    // Survives a restart, and a fresh device of Bob sees Alice verified through the signature.
    await bob.restart();
    assert.equal((await bob.machine.getUserIdentity(ALICE))?.verified, true);
  });

  it("an identity change is flagged, a violation for a verified user, until accepted", async () => {
    const { alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    await bob.bootstrapCrossSigning();
    await query(bob, ALICE);
    await bob.machine.markUserVerified(ALICE);
    await bob.flush();

    await alice.bootstrapCrossSigning(true); // Alice resets her identity
    await bob.sync();
    let identity = await bob.machine.getUserIdentity(ALICE);
    assert.equal(identity?.changed, true);
    assert.equal(identity?.violation, true);
    assert.equal(identity?.state, "violation");
    const [device] = await bob.machine.getUserDevices(ALICE);
    assert.equal(device?.verified, false);

    identity = await bob.machine.acceptIdentityChange(ALICE);
    assert.equal(identity.changed, false);
    assert.equal(identity.violation, false);
    assert.equal(identity.state, "pinned");
  });

  it("withdrawing verification clears a violation but not the change", async () => {
    const { alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    await query(bob, ALICE);
    await bob.machine.markUserVerified(ALICE); // locally: Bob has no keys of his own
    await alice.bootstrapCrossSigning(true);
    await bob.sync();
    assert.equal((await bob.machine.getUserIdentity(ALICE))?.state, "violation");
    const identity = await bob.machine.withdrawVerification(ALICE);
    assert.equal(identity.violation, false);
    assert.equal(identity.state, "changed");
  });

  it("bootstrap refuses to replace an identity whose keys we do not hold", async () => {
    const { hs, alice } = await setup();
    await alice.bootstrapCrossSigning();
    const alice2 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" });
    await alice2.machine.receiveKeysChanges([ALICE], []);
    await alice2.flush();
    await assert.rejects(alice2.machine.bootstrapCrossSigning(), (e: unknown) => {
      return e instanceof CrossSigningError && e.code === "IDENTITY_EXISTS";
    });
  });

  it("verifying a new own device signs it; the other device trusts our identity once verified", async () => {
    const { hs, alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    const alice2 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" });
    await alice.sync();
    await query(bob, ALICE);
    let devices = await bob.machine.getUserDevices(ALICE);
    assert.equal(devices.find((d) => d.deviceId === "ALICE2")?.crossSigned, false);

    const { request } = await alice.machine.markDeviceVerified(ALICE, "ALICE2");
    assert.ok(request !== undefined);
    await alice.flush();
    await bob.sync();
    devices = await bob.machine.getUserDevices(ALICE);
    assert.equal(devices.find((d) => d.deviceId === "ALICE2")?.crossSigned, true);

    // Alice's second device knows the identity but does not trust it until verified.
    await alice2.sync();
    await alice2.machine.receiveKeysChanges([ALICE], []);
    await alice2.flush();
    let first = (await alice2.machine.getUserDevices(ALICE)).find((d) => d.deviceId === "ALICE1");
    assert.equal(first?.crossSigned, true);
    assert.equal(first?.verified, false);
    await alice2.machine.markUserVerified(ALICE);
    first = (await alice2.machine.getUserDevices(ALICE)).find((d) => d.deviceId === "ALICE1");
    assert.equal(first?.verified, true);
    assert.equal((await alice2.machine.crossSigningStatus()).deviceCrossSigned, true);
  });

  it("shareWith cross_signed withholds the key from devices not cross-signed (m.unverified)", async () => {
    const { hs, alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    const alice2 = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE2" });
    const event = await bob.sendMessage(ROOM, joined(ALICE, BOB), "cross-signed only", {
      shareWith: "cross_signed",
    });
    const withheld = hs.sentToDevice.filter((m) => m.eventType === "m.room_key.withheld");
    assert.deepEqual(
      withheld.map((m) => [m.to, m.content.code]),
      [[`${ALICE}|ALICE2`, "m.unverified"]],
    );
    await alice.sync();
    await alice2.sync();
    const read = await alice.machine.decryptRoomEvent(event, ROOM);
    assert.equal(read.content.body, "cross-signed only");
    await assert.rejects(alice2.machine.decryptRoomEvent(event, ROOM), (e: unknown) => {
      return e instanceof DecryptionError && e.code === "WITHHELD" && e.withheldCode === "m.unverified";
    });

    // Once cross-signed, the device gets the key at the next share.
    await alice.machine.markDeviceVerified(ALICE, "ALICE2");
    await alice.flush();
    await bob.sync();
    const later = await bob.sendMessage(ROOM, joined(ALICE, BOB), "now readable", {
      shareWith: "cross_signed",
    });
    await alice2.sync();
    assert.equal((await alice2.machine.decryptRoomEvent(later, ROOM)).content.body, "now readable");
  });

  it("events from devices not cross-signed are marked, or refused under senderRequirement refuse", async () => {
    const { alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    const fromAlice = await alice.sendMessage(ROOM, joined(ALICE, BOB), "signed sender");
    const fromBob = await bob.sendMessage(ROOM, joined(ALICE, BOB), "unsigned sender");
    await alice.sync();
    await bob.sync();
    await query(bob, ALICE);
    await query(alice, BOB);
    const a = await bob.machine.decryptRoomEvent(fromAlice, ROOM, { senderRequirement: "refuse" });
    assert.equal(a.senderCrossSigned, true);
    assert.equal(a.senderIdentity, "pinned");
    const b = await alice.machine.decryptRoomEvent(fromBob, ROOM);
    assert.equal(b.senderCrossSigned, false);
    assert.equal(b.senderIdentity, "none");
    await assert.rejects(
      alice.machine.decryptRoomEvent(fromBob, ROOM, { senderRequirement: "refuse" }),
      (e: unknown) => {
        return e instanceof DecryptionError && e.code === "SENDER_NOT_CROSS_SIGNED";
      },
    );
  });
});
