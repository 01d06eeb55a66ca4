// Cross-signing through the devserver with two Keyroom clients: bootstrap (UIA to reset), verifying
// a user, an identity reset seen by the verifier, and the "only cross-signed devices" requirement.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClientError, CrossSigningError } from "../../src/client/index.ts";
import {
  devServerFixture,
  encryptedClient,
  eventById,
  fixtureDevice,
  fixtureUser,
  sharedRoom,
  syncAll,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-xsign-");

describe("cross-signing (devserver)", () => {
  it("bootstrap, reset with UIA, and a second device that refuses to overwrite", async () => {
    const alice = await fixtureUser(fx, "xa");
    let status = await alice.client.bootstrapCrossSigning();
    assert.equal(status.verified, true);
    assert.equal(status.deviceCrossSigned, true);
    const first = status.masterKey;
    assert.ok(first);
    // Idempotent.
    status = await alice.client.bootstrapCrossSigning();
    assert.equal(status.masterKey, first);
    // Replacing keys asks for the password.
    await assert.rejects(alice.client.bootstrapCrossSigning({ reset: true }), (e: unknown) => {
      return e instanceof ClientError && e.code === "AUTH_REQUIRED";
    });
    status = await alice.client.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    assert.notEqual(status.masterKey, first);
    assert.equal(status.deviceCrossSigned, true);

    const other = await fixtureDevice(fx, alice, "2");
    await assert.rejects(other.client.bootstrapCrossSigning(), (e: unknown) => {
      return e instanceof CrossSigningError && e.code === "IDENTITY_EXISTS";
    });
    // The new device sees itself unsigned, Alice's first device cross-signed.
    const devices = await other.client.getUserDevices(alice.client.userId);
    assert.equal(devices.find((d) => d.deviceId === alice.client.deviceId)?.crossSigned, true);
    // Verifying it from the first device cross-signs it; the new device hears of it at its next sync.
    await syncAll(alice, other);
    const info = await alice.client.verifyDevice(alice.client.userId, other.client.deviceId as string);
    assert.equal(info.verified, true);
    await other.client.syncOnce({ timeoutMs: 0 });
    assert.equal((await other.client.getCrossSigningStatus()).deviceCrossSigned, true);
  });

  it("verifying a user, then their identity reset: violation until accepted", async () => {
    const alice = await fixtureUser(fx, "xb");
    const bob = await fixtureUser(fx, "xc");
    await alice.client.bootstrapCrossSigning();
    await bob.client.bootstrapCrossSigning();
    const roomId = await sharedRoom(alice, [bob]);
    let identity = await bob.client.getUserIdentity(alice.client.userId);
    assert.equal(identity?.state, "pinned");
    identity = await bob.client.verifyUser(alice.client.userId);
    assert.equal(identity.verified, true);
    const devices = await bob.client.getUserDevices(alice.client.userId);
    assert.equal(devices[0]?.verified, true);

    const before = await alice.client.sendText(roomId, "from a verified user");
    await syncAll(bob);
    assert.equal(eventById(bob, before).encryption?.decrypted, true);
    const enc = eventById(bob, before).encryption;
    assert.ok(enc?.decrypted === true);
    assert.equal(enc.trust, "verified");
    assert.equal(enc.senderIdentity, "verified");

    await alice.client.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    await syncAll(bob);
    identity = await bob.client.getUserIdentity(alice.client.userId);
    assert.equal(identity?.changed, true);
    assert.equal(identity?.violation, true);
    const after = await alice.client.sendText(roomId, "after the reset");
    await syncAll(bob);
    const enc2 = eventById(bob, after).encryption;
    assert.ok(enc2?.decrypted === true);
    assert.equal(enc2.senderIdentity, "violation");
    assert.equal(enc2.trust, "unverified");

    identity = await bob.client.acceptIdentityChange(alice.client.userId);
    assert.equal(identity.state, "pinned");
  });

  it("shareWith cross_signed: a device not cross-signed gets m.unverified, then the key once signed", async () => {
    const alice = await fixtureUser(fx, "xd");
    const bob = await fixtureUser(fx, "xe", { shareWith: "cross_signed" });
    await alice.client.bootstrapCrossSigning();
    const roomId = await sharedRoom(bob, [alice]);
    const alice2 = await fixtureDevice(fx, alice, "2");
    await syncAll(alice, bob, alice2);

    const hidden = await bob.client.sendText(roomId, "for cross-signed devices");
    await syncAll(alice, alice2);
    assert.equal(eventById(alice, hidden).encryption?.decrypted, true);
    const refused = eventById(alice2, hidden).encryption;
    assert.ok(refused?.decrypted === false);
    assert.equal(refused.code, "WITHHELD");
    assert.equal(refused.withheldCode, "m.unverified", "the sender's code, for the application to show");

    await alice.client.verifyDevice(alice.client.userId, alice2.client.deviceId as string);
    await syncAll(bob);
    const shown = await bob.client.sendText(roomId, "now cross-signed");
    await syncAll(alice2);
    assert.equal(eventById(alice2, shown).encryption?.decrypted, true);
    assert.equal(eventById(alice2, shown).content.body, "now cross-signed");
  });

  it("per-room trust requirements are kept across a restart", async () => {
    const alice = await fixtureUser(fx, "xf");
    const bob = await fixtureUser(fx, "xg");
    await alice.client.bootstrapCrossSigning();
    const roomId = await sharedRoom(bob, [alice]);
    const alice2 = await fixtureDevice(fx, alice, "2");
    await syncAll(alice, bob, alice2);
    await assert.rejects(
      bob.client.setRoomTrustRequirements("!nowhere:localhost", { shareWith: "verified" }),
      {
        code: "INVALID_ARGUMENT",
      },
    );
    await bob.client.setRoomTrustRequirements(roomId, { shareWith: "cross_signed" });
    await bob.client.setRoomTrustRequirements(roomId, { senderRequirement: "refuse" });

    const session = await bob.client.store.loadSession();
    assert.ok(session);
    await bob.client.close();
    const again = encryptedClient(fx.hs, bob.storeDir);
    fx.open.push(again);
    await again.restore(session);
    const bob2 = watch(again, bob.name, bob.storeDir);
    await syncAll(bob2);

    // shareWith survived: alice's device that is not cross-signed is refused the key.
    const hidden = await again.sendText(roomId, "for cross-signed devices");
    await syncAll(alice, alice2);
    assert.equal(eventById(alice, hidden).encryption?.decrypted, true);
    const withheld = eventById(alice2, hidden).encryption;
    assert.ok(withheld?.decrypted === false);
    assert.equal(withheld.code, "WITHHELD");

    // senderRequirement survived: the same device's messages are refused.
    const fromUnsigned = await alice2.client.sendText(roomId, "from a device not cross-signed");
    await syncAll(bob2);
    const refused = eventById(bob2, fromUnsigned).encryption;
    assert.ok(refused?.decrypted === false);
    assert.equal(refused.code, "SENDER_NOT_CROSS_SIGNED");
  });

  it("one sync response, two rooms with different sender requirements: each room's applies", async () => {
    const alice = await fixtureUser(fx, "xh");
    const bob = await fixtureUser(fx, "xi");
    await alice.client.bootstrapCrossSigning();
    const strict = await sharedRoom(bob, [alice]);
    const lenient = await sharedRoom(bob, [alice]);
    await bob.client.setRoomTrustRequirements(strict, { senderRequirement: "refuse" });
    const alice2 = await fixtureDevice(fx, alice, "2");
    await syncAll(alice, bob, alice2);

    // Both arrive in Bob's next response, decrypted together (one engine call per requirement).
    const inStrict = await alice2.client.sendText(strict, "refused here");
    const inLenient = await alice2.client.sendText(lenient, "read here");
    await syncAll(bob);
    const refused = eventById(bob, inStrict).encryption;
    assert.ok(refused?.decrypted === false);
    assert.equal(refused.code, "SENDER_NOT_CROSS_SIGNED");
    assert.equal(eventById(bob, inLenient).content.body, "read here");
  });
});
