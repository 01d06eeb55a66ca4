// An event whose session no device we know holds, sent under our own user ID and naming our own
// device ID (a server can put any sender on an event, and any device ID in its content), is from
// an unknown device: it must not count as from our own device, which is cross-signed by
// definition. Before, it came out `senderCrossSigned: true` and passed `senderRequirement:
// "refuse"`; a bot took it as verified (cross-signed, and our own identity verified).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecryptionError } from "../errors.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!room:example.org";

/** Bob holds a session from a device he cannot look up, used for an event in his own name. */
async function setup() {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" });
  const sent = await alice.sendMessage(ROOM, joined(ALICE, BOB), "in Bob's name");
  hs.deleteDevice(ALICE, "ALICE1"); // the server lists no device with the session's key
  await bob.sync();
  const content = sent.content as Record<string, unknown>;
  const forged = { ...sent, sender: BOB, content: { ...content, device_id: "BOB1" } };
  return { bob, forged };
}

describe("an event naming our own device, from a session of an unknown device", () => {
  it("is not marked as from a cross-signed device", async () => {
    const { bob, forged } = await setup();
    const decrypted = await bob.machine.decryptRoomEvent(forged, ROOM);
    assert.equal(decrypted.content.body, "in Bob's name");
    assert.equal(decrypted.trust, "unknown_device");
    assert.equal(decrypted.senderCrossSigned, false);
  });

  it("the control: our own device's event counts as cross-signed, under refuse too", async () => {
    const { bob } = await setup();
    const own = await bob.sendMessage(ROOM, joined(ALICE, BOB), "ours");
    const decrypted = await bob.machine.decryptRoomEvent(own, ROOM, { senderRequirement: "refuse" });
    assert.equal(decrypted.trust, "verified");
    assert.equal(decrypted.senderCrossSigned, true);
  });

  it("is refused under senderRequirement refuse", async () => {
    const { bob, forged } = await setup();
    await assert.rejects(
      bob.machine.decryptRoomEvent(forged, ROOM, { senderRequirement: "refuse" }),
      (e: unknown) => e instanceof DecryptionError && e.code === "SENDER_NOT_CROSS_SIGNED",
    );
  });
});
