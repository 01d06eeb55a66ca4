// A room key bundle holds a room's whole shareable history, so it goes only to devices their
// owner's identity signed. A user we verified whose identity then changed (a violation: the new
// identity may be a server's) has no such devices until the app accepts the new identity or
// withdraws the verification, as for room keys under shareWith "cross_signed"; a bundle such a
// user sends waits for the same decision.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { EncryptedFile } from "../../crypto/attachments/index.ts";
import { sendBundle } from "../test-support/bundles.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { BUNDLE_FILE } from "../test-support/values.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!room:example.org";

async function share(bob: TestClient): Promise<string[]> {
  await bob.flush();
  const claim = await bob.machine.getMissingSessions([ALICE]);
  if (claim !== undefined) await bob.send(claim);
  const { recipients } = await bob.machine.historySharing.shareBundle(
    ROOM,
    ALICE,
    BUNDLE_FILE as EncryptedFile,
  );
  return recipients;
}

/** Alice and Bob with cross-signing identities; Bob verified Alice's. */
async function bobVerifiedAlice(): Promise<{ alice: TestClient; bob: TestClient }> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" });
  await alice.bootstrapCrossSigning();
  await bob.bootstrapCrossSigning();
  await bob.machine.updateTrackedUsers([ALICE]);
  await bob.flush();
  await bob.machine.markUserVerified(ALICE);
  return { alice, bob };
}

it("a bundle is not sent to a verified user whose identity changed, until the app accepts it", async () => {
  const { alice, bob } = await bobVerifiedAlice();
  assert.deepEqual(await share(bob), ["ALICE1"], "sent while the identity is the verified one");

  await alice.bootstrapCrossSigning(true); // a new identity, which signs ALICE1
  await bob.sync();
  assert.equal((await bob.machine.getUserIdentity(ALICE))?.state, "violation");
  assert.equal((await bob.machine.getUserDevices(ALICE))[0]?.crossSigned, true, "signed by the new identity");
  assert.deepEqual(await share(bob), [], "not sent to the changed identity's devices");

  await bob.machine.acceptIdentityChange(ALICE);
  assert.deepEqual(await share(bob), ["ALICE1"], "sent again once the app accepted the new identity");
});

it("a bundle from an inviter we verified whose identity changed waits until the app accepts the new identity", async () => {
  const { alice, bob } = await bobVerifiedAlice();

  await alice.bootstrapCrossSigning(true); // a new identity, which signs ALICE1
  await sendBundle(alice, BOB, ROOM);
  await bob.sync();
  await bob.machine.historySharing.inviteAccepted(ROOM, ALICE);
  assert.equal((await bob.machine.getUserIdentity(ALICE))?.state, "violation");
  assert.deepEqual(await bob.machine.historySharing.bundlesToImport(), [], "not from a changed identity");

  await bob.machine.acceptIdentityChange(ALICE);
  const ready = await bob.machine.historySharing.bundlesToImport();
  assert.deepEqual(
    ready.map((b) => [b.roomId, b.sender]),
    [[ROOM, ALICE]],
    "kept, and ready once the app accepted the new identity",
  );
});
