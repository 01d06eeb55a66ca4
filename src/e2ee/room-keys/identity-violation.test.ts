// shareWith "cross_signed" gives room keys to devices their owner's identity signed. A user we had
// verified whose identity then changed (a violation: the new identity may be a server's) had its
// new identity's devices given the keys all the same; they now get m.unverified until the app
// accepts the new identity or withdraws the verification, as with "verified".
import assert from "node:assert/strict";
import { it } from "node:test";
import { DecryptionError } from "../errors.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!room:example.org";

it("under shareWith cross_signed, a verified user whose identity changed gets no key until the app decides", async () => {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" });
  await alice.bootstrapCrossSigning();
  await bob.bootstrapCrossSigning();
  await bob.machine.updateTrackedUsers([ALICE]);
  await bob.machine.receiveKeysChanges([ALICE], []);
  await bob.flush();
  await bob.machine.markUserVerified(ALICE);
  await bob.flush();

  await alice.bootstrapCrossSigning(true); // a new identity, which signs ALICE1
  await bob.sync();
  assert.equal((await bob.machine.getUserIdentity(ALICE))?.state, "violation");
  const [device] = await bob.machine.getUserDevices(ALICE);
  assert.equal(device?.crossSigned, true, "signed by the new identity");

  const withheld = await bob.sendMessage(ROOM, joined(ALICE, BOB), "not for a changed identity", {
    shareWith: "cross_signed",
  });
  assert.deepEqual(
    hs.sentToDevice.filter((m) => m.eventType === "m.room_key.withheld").map((m) => [m.to, m.content.code]),
    [[`${ALICE}|ALICE1`, "m.unverified"]],
  );
  await alice.sync();
  await assert.rejects(
    alice.machine.decryptRoomEvent(withheld, ROOM),
    (e: unknown) => e instanceof DecryptionError && e.code === "WITHHELD",
  );

  // The app accepts the new identity: its devices get keys again.
  await bob.machine.acceptIdentityChange(ALICE);
  const later = await bob.sendMessage(ROOM, joined(ALICE, BOB), "after accepting", {
    shareWith: "cross_signed",
  });
  await alice.sync();
  assert.equal((await alice.machine.decryptRoomEvent(later, ROOM)).content.body, "after accepting");
});
