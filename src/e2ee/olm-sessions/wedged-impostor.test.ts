/** Unwedging a device cannot be called off by another user naming that device's curve key. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { junkOlmEvent, RawOlmPeer } from "../test-support/raw-peer.ts";
import { UNWEDGE_INTERVAL_MS } from "./sessions.ts";

describe("a wedged device and an impostor", () => {
  for (const order of ["after", "before"] as const)
    it(`still unwedges the real device when another user sends junk from its key ${order} it`, async () => {
      const hs = new FakeHomeserver();
      let now = 1_700_000_000_000;
      const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: () => now });
      const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: () => now });
      const eve = new RawOlmPeer("@eve:x", "E");
      eve.publish(hs);
      await bob.sync();
      await alice.sendMessage("!r:x", joined("@alice:x", "@bob:x"), "hi");
      await bob.sync();
      await bob.machine.updateTrackedUsers(["@alice:x", "@eve:x"]);
      await bob.flush();
      now += UNWEDGE_INTERVAL_MS + 1;

      const aliceKey = alice.machine.identityKeys.curve25519;
      const real = junkOlmEvent("@alice:x", aliceKey, bob);
      const fake = junkOlmEvent("@eve:x", aliceKey, bob);
      const events = order === "after" ? [real, fake] : [fake, real];
      const result = await bob.machine.receiveSyncChanges({ toDevice: events });
      assert.deepEqual(
        result.failures.map((f) => f.code),
        ["NO_SESSION", "NO_SESSION"],
      );
      const before = hs.sentToDevice.length;
      await bob.flush();
      assert.ok(
        hs.sentToDevice.slice(before).some((m) => m.from === "@bob:x" && m.to === "@alice:x|A"),
        "Alice's device gets a new session and an m.dummy",
      );
    });
});
