// Looking up a user we share no encrypted room with (`getUserDevices`, `getUserIdentity`) made
// us track them for good: their device-list changes were followed from then on, and every user
// looked up grew the tracked users. Lookups are now one-off queries (as matrix-rust-sdk's
// `query_keys_for_users`): the answer is stored, the user is not tracked. Verifying such a user
// in an unencrypted DM still works, and a user who comes to share an encrypted room is tracked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  compareAndConfirm,
  crossSignedDm,
  devServerFixture,
  fixtureUser,
  readyInDm,
  sharedRoom,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-lookups-");

describe("looking up users we share no encrypted room with", () => {
  it("answers without tracking them; sharing an encrypted room later tracks them", async () => {
    const alice = await fixtureUser(fx, "la");
    const bob = await fixtureUser(fx, "lb");
    const carol = await fixtureUser(fx, "lc");
    await alice.client.bootstrapCrossSigning();
    const machine = bob.client.crypto.machine;

    const devices = await bob.client.getUserDevices(alice.client.userId);
    assert.deepEqual(
      devices.map((d) => d.deviceId),
      [alice.client.deviceId],
    );
    const identity = await bob.client.crypto.getUserIdentity(alice.client.userId);
    assert.ok(identity !== undefined, "the identity was fetched and stored");
    assert.equal((await bob.client.getUserDevices(carol.client.userId)).length, 1);
    assert.equal(machine.isTracked(alice.client.userId), false, "a lookup does not track");
    assert.equal(machine.isTracked(carol.client.userId), false);

    await sharedRoom(alice, [bob]);
    assert.equal(machine.isTracked(alice.client.userId), true, "a member of an encrypted room is tracked");
    assert.equal(machine.isTracked(carol.client.userId), false);
  });

  it("verifying a user in an unencrypted DM works without tracking them through the lookup", async () => {
    const alice = await fixtureUser(fx, "ld");
    const bob = await fixtureUser(fx, "le");
    const roomId = await crossSignedDm(bob, alice, false);
    await alice.client.startSync();
    await bob.client.startSync();
    try {
      // The existing DM, not encrypted.
      const { outgoing, request } = await readyInDm(bob, alice, roomId);
      await outgoing.startSas();
      await compareAndConfirm(outgoing, request);
      assert.equal((await bob.client.crypto.getUserIdentity(alice.client.userId))?.verified, true);
      assert.equal((await alice.client.crypto.getUserIdentity(bob.client.userId))?.verified, true);
    } finally {
      await alice.client.stopSync();
      await bob.client.stopSync();
    }
  });
});
