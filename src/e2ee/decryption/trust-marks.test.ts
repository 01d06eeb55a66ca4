/**
 * The trust a decrypted event reports (docs/e2ee.md, "Receiving"): a key that came from a
 * forward, an import or a backup only repeats someone's claim of who created the session, so it
 * is never better than `unverified`, whoever is named and however well we trust them; a claim that
 * does not match the named device's keys is `mismatched_sender_key`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { DecryptionError } from "../errors.ts";
import { bobTrackingAlice, megolmEventIn, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";

const setup = bobTrackingAlice;

/** An export entry of `session` from index 0 naming `creator`'s keys (or the given ones). */
function exportNaming(
  session: OutboundGroupSession,
  keys: { curve25519: string; ed25519: string },
): Record<string, unknown> {
  return {
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: ROOM,
    sender_key: keys.curve25519,
    session_id: session.sessionId,
    session_key: InboundGroupSession.fromSessionKey(session.sessionKey()).exportAt(0),
    sender_claimed_keys: { ed25519: keys.ed25519 },
    forwarding_curve25519_key_chain: [],
  };
}

const eventIn = (session: OutboundGroupSession, sender: string, deviceId: string, body: string) =>
  megolmEventIn(session, ROOM, sender, deviceId, body);

async function importAndDecrypt(
  bob: TestClient,
  creator: { curve25519: string; ed25519: string },
  sender: string,
  deviceId: string,
) {
  const session = OutboundGroupSession.create();
  assert.equal((await bob.machine.importRoomKeys([exportNaming(session, creator)])).imported, 1);
  return bob.machine.decryptRoomEvent(eventIn(session, sender, deviceId, "imported"), ROOM);
}

describe("trust marks of decrypted events", () => {
  it("an imported key naming a device we verified is unverified and marked forwarded", async () => {
    const { alice, bob } = await setup();
    await bob.machine.setDeviceTrust("@alice:x", "A", "verified");
    const decrypted = await importAndDecrypt(bob, alice.machine.identityKeys, "@alice:x", "A");
    assert.equal(decrypted.forwarded, true);
    assert.equal(decrypted.trust, "unverified");
    assert.equal(decrypted.senderDevice, "A");
  });

  it("an imported key naming a device cross-signed by a user we verified is unverified", async () => {
    const { alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    await bob.bootstrapCrossSigning();
    await bob.machine.receiveKeysChanges(["@alice:x"], []);
    await bob.flush();
    const { request } = await bob.machine.markUserVerified("@alice:x");
    assert.ok(request);
    await bob.flush();
    const [device] = await bob.machine.getUserDevices("@alice:x");
    assert.equal(device?.verified, true, "Alice's device is verified through cross-signing");
    const decrypted = await importAndDecrypt(bob, alice.machine.identityKeys, "@alice:x", "A");
    assert.equal(decrypted.forwarded, true);
    // The key only names the device: whoever wrote the import (a backup entry, a bundle) may name
    // any device, so it is not taken as from a cross-signed one (apps and bots read this mark).
    assert.equal(decrypted.senderCrossSigned, false);
    assert.equal(decrypted.trust, "unverified");
  });

  it("an imported key naming a cross-signed device is refused under senderRequirement refuse", async () => {
    const { alice, bob } = await setup();
    await alice.bootstrapCrossSigning();
    await bob.machine.receiveKeysChanges(["@alice:x"], []);
    await bob.flush();
    const [device] = await bob.machine.getUserDevices("@alice:x");
    assert.equal(device?.crossSigned, true, "Alice's device is cross-signed");
    const session = OutboundGroupSession.create();
    await bob.machine.importRoomKeys([exportNaming(session, alice.machine.identityKeys)]);
    const event = eventIn(session, "@alice:x", "A", "injected");
    await assert.rejects(
      bob.machine.decryptRoomEvent(event, ROOM, { senderRequirement: "refuse" }),
      (e: unknown) => e instanceof DecryptionError && e.code === "SENDER_NOT_CROSS_SIGNED",
    );
  });

  it("an imported key claiming to be our own device's is unverified", async () => {
    const { bob } = await setup();
    // Someone else's session, passed off (in a file or backup) as one our device created.
    const decrypted = await importAndDecrypt(bob, bob.machine.identityKeys, "@bob:x", "B");
    assert.equal(decrypted.forwarded, true);
    assert.equal(decrypted.trust, "unverified");
  });

  it("a key naming the device's Curve25519 key with another Ed25519 key is mismatched_sender_key", async () => {
    const { hs, alice, bob } = await setup();
    const mallory = await TestClient.create(hs, { userId: "@mallory:x", deviceId: "M" });
    const claim = {
      curve25519: alice.machine.identityKeys.curve25519,
      ed25519: mallory.machine.identityKeys.ed25519,
    };
    const decrypted = await importAndDecrypt(bob, claim, "@alice:x", "A");
    assert.equal(decrypted.trust, "mismatched_sender_key");
  });

  it("the control: a direct key from a device we verified is verified", async () => {
    const { alice, bob } = await setup();
    await bob.machine.setDeviceTrust("@alice:x", "A", "verified");
    const members = [
      { userId: "@alice:x", membership: "join" as const },
      { userId: "@bob:x", membership: "join" as const },
    ];
    const event = await alice.sendMessage(ROOM, members, "direct");
    await bob.sync();
    const decrypted = await bob.machine.decryptRoomEvent(event, ROOM);
    assert.equal(decrypted.forwarded, false);
    assert.equal(decrypted.trust, "verified");
  });
});
