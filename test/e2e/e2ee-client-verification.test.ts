// Interactive verification between Keyroom clients through the devserver: SAS between two devices
// of one user (to-device), and between two users in a DM; afterwards each side's own API reports
// the other verified.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  compareAndConfirm,
  crossSignedDm,
  devServerFixture,
  fixtureDevice,
  fixtureUser,
  nextRequest,
  readyInDm,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-verify-");

describe("interactive verification between Keyroom clients (devserver)", () => {
  it("SAS over to-device between two devices of one user, each side starting once", async () => {
    const one = await fixtureUser(fx, "va");
    const two = await fixtureDevice(fx, one, "2");
    await one.client.startSync();
    await two.client.startSync();
    try {
      for (const [from, to] of [
        [one, two],
        [two, one],
      ] as const) {
        const incoming = nextRequest(to.client);
        const outgoing = await from.client.requestVerification(
          from.client.userId,
          to.client.deviceId as string,
        );
        const request = await incoming;
        assert.equal(request.otherDeviceId, from.client.deviceId);
        await request.accept();
        await outgoing.waitFor((s) => s.phase === "ready");
        await outgoing.startSas();
        await compareAndConfirm(outgoing, request);
      }
      const seen = await one.client.getUserDevices(one.client.userId);
      assert.equal(seen.find((d) => d.deviceId === two.client.deviceId)?.trust, "verified");
      const back = await two.client.getUserDevices(one.client.userId);
      assert.equal(back.find((d) => d.deviceId === one.client.deviceId)?.trust, "verified");
    } finally {
      await one.client.stopSync();
      await two.client.stopSync();
    }
  });

  it("SAS in a DM between two users with cross-signing: each verifies the other's identity", async () => {
    const alice = await fixtureUser(fx, "vb");
    const bob = await fixtureUser(fx, "vc");
    const roomId = await crossSignedDm(bob, alice, true);
    await alice.client.startSync();
    await bob.client.startSync();
    try {
      const { outgoing, request } = await readyInDm(bob, alice, roomId);
      // The side that was asked starts this time.
      await request.startSas();
      await compareAndConfirm(outgoing, request);
      assert.deepEqual(
        outgoing.verified?.masterKeys.map((m) => m.userId),
        [alice.client.userId],
      );
      const aliceSeenByBob = await bob.client.getUserIdentity(alice.client.userId);
      assert.equal(aliceSeenByBob?.verified, true);
      const bobSeenByAlice = await alice.client.getUserIdentity(bob.client.userId);
      assert.equal(bobSeenByAlice?.verified, true);
    } finally {
      await alice.client.stopSync();
      await bob.client.stopSync();
    }
  });
});
