// Devices that gave no one-time key are backed off (CLAIM_FAILURE_BACKOFF_MS), so that we do not
// claim in a loop. The back-off was per Curve25519 key, which any user can publish for a device of
// their own: a room member with a copy of someone's key and no one-time keys held back our first
// Olm session with the real device, which then got no room key for 15 minutes at a time.
import assert from "node:assert/strict";
import { it } from "node:test";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";
import { RawOlmPeer } from "./test-support/raw-peer.ts";

const ROOM = "!room:x";

it("a device with a copy of another's Curve25519 key and no one-time keys does not hold back the real device", async () => {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  const mallory = new RawOlmPeer("@mallory:x", "M");
  mallory.publish(hs, alice.machine.identityKeys.curve25519); // and no one-time key to claim
  await bob.sendMessage(ROOM, joined("@bob:x", "@mallory:x"), "before Alice joined");
  assert.ok(
    !hs.sentToDevice.some((m) => m.to === "@mallory:x|M" && m.eventType === "m.room.encrypted"),
    "Mallory's device gave no key: no session, no room key",
  );

  const event = await bob.sendMessage(ROOM, joined("@bob:x", "@mallory:x", "@alice:x"), "after she joined");
  await alice.sync();
  const decrypted = await alice.machine.decryptRoomEvent(event, ROOM);
  assert.equal(decrypted.content.body, "after she joined");
});
