/**
 * A peer's pre-key message can arrive long after it claimed our one-time key, while other peers
 * claimed (and never used) keys that we replaced meanwhile: the account keeps enough keys
 * (`MAX_ONE_TIME_KEYS`) that the claimed key is still there, so the session is not wedged.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ONE_TIME_KEYS_TO_PUBLISH } from "../../crypto/olm/index.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";

const GENERATIONS = 150;
const CLAIMS_PER_GENERATION = 10;

describe("one-time keys claimed long ago", () => {
  it(`a key claimed ${GENERATIONS} generations of replacements ago still starts a session, across a restart`, async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    assert.equal(hs.device("@bob:x", "B").oneTimeKeys.size, ONE_TIME_KEYS_TO_PUBLISH);
    const alice = new RawOlmPeer("@alice:x", "A");
    alice.publish(hs);
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.flush();
    // Alice claims Bob's oldest key; her first message will come much later.
    alice.startSession(hs, bob);

    for (let generation = 0; generation < GENERATIONS; generation++) {
      for (let i = 0; i < CLAIMS_PER_GENERATION; i++) {
        hs.handle("@claimer:x", "C", {
          id: `claim-${generation}-${i}`,
          type: "keys_claim",
          body: { one_time_keys: { "@bob:x": { B: "signed_curve25519" } } },
        });
      }
      await bob.sync(); // the count dropped: Bob makes and uploads replacements
    }
    assert.equal(hs.device("@bob:x", "B").oneTimeKeys.size, ONE_TIME_KEYS_TO_PUBLISH);
    await bob.restart();

    const message = alice.encrypt(hs, bob, alice.payload(bob, "m.dummy", { n: 1 }));
    const result = await bob.machine.receiveSyncChanges({ toDevice: [message] });
    assert.deepEqual(result.failures, []);
    assert.deepEqual(
      result.toDevice.map((e) => e.content),
      [{ n: 1 }],
    );
  });
});
