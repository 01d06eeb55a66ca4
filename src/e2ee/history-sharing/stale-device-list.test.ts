// Whether the device that sent a bundle is one the inviter cross-signed is judged on a current
// device list. While the inviter's list is outdated (their client signed a device since we last
// asked, and the query failed or has not run), a bundle from a device we knew unsigned waits; it
// is not dropped for good on what may be stale data.
import assert from "node:assert/strict";
import { it } from "node:test";
import { sendBundle } from "../test-support/bundles.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!room:example.org";

it("a bundle from a device known unsigned waits while the inviter's device list is outdated", async () => {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" });
  await bob.bootstrapCrossSigning();
  // Bob knows ALICE1 before Alice has a cross-signing identity.
  await bob.machine.updateTrackedUsers([ALICE]);
  await bob.flush();
  assert.equal((await bob.machine.getDevice(ALICE, "ALICE1"))?.crossSigned, false);

  await alice.bootstrapCrossSigning(); // signs ALICE1
  await sendBundle(alice, BOB, ROOM);

  // Bob's sync says Alice's keys changed and brings the bundle; the query has not been answered.
  const data = hs.syncFor(BOB, "BOB1");
  await bob.machine.receiveSyncChanges({
    ...data,
    deviceLists: { changed: [ALICE], left: [] },
    nextBatch: "s1",
  });
  await bob.machine.historySharing.inviteAccepted(ROOM, ALICE);
  assert.equal(bob.machine.hasOutdatedUsers([ALICE]), true);
  assert.deepEqual(await bob.machine.historySharing.bundlesToImport(), [], "waits for the current list");

  await bob.flush();
  const ready = await bob.machine.historySharing.bundlesToImport();
  assert.deepEqual(
    ready.map((b) => [b.roomId, b.sender]),
    [[ROOM, ALICE]],
    "imported once the list shows the device cross-signed",
  );
});
