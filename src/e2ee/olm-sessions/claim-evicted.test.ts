/**
 * A claim response for a device whose sessions left the in-memory cache while the claim was out
 * (more than `OLM_SESSION_CACHE_SIZE` other peers used meanwhile, e.g. junk from made-up keys):
 * the new session joins the stored ones, it does not hide them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { junkOlmEvent, RawOlmPeer } from "../test-support/raw-peer.ts";
import { OLM_SESSION_CACHE_SIZE, UNWEDGE_INTERVAL_MS } from "./sessions.ts";

describe("Olm claim response after the device's sessions were evicted from memory", () => {
  it("still decrypts the peer's messages on its existing session", async () => {
    let t = 1_700_000_000_000;
    const now = () => t;
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now });
    const alice = new RawOlmPeer("@alice:x", "A");
    alice.publish(hs);
    // A one-time key of Alice's on the server, for Bob's claim.
    alice.account.generateOneTimeKeys(1);
    for (const [keyId, key] of Object.entries(alice.account.oneTimeKeys())) {
      hs.device("@alice:x", "A").oneTimeKeys.set(
        `signed_curve25519:${keyId}`,
        signWithAccount(alice.account, "@alice:x", "A", { key }),
      );
    }
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.flush();
    // Alice starts a session with Bob (on one of his one-time keys).
    const first = alice.encrypt(hs, bob, alice.payload(bob, "m.dummy", { n: 1 }));
    assert.deepEqual((await bob.machine.receiveSyncChanges({ toDevice: [first] })).failures, []);

    // An hour on, the server sends junk under Alice's key: Bob will unwedge her.
    t += UNWEDGE_INTERVAL_MS + 1;
    const junk = await bob.machine.receiveSyncChanges({
      toDevice: [junkOlmEvent("@alice:x", alice.curve25519, bob)],
    });
    assert.deepEqual(
      junk.failures.map((f) => f.code),
      ["NO_SESSION"],
    );
    const claim = (await bob.machine.outgoingRequests()).find((r) => r.type === "keys_claim");
    assert.ok(claim, "a claim to unwedge Alice");

    // While the claim is out, junk from more made-up keys than the cache holds pushes Alice's
    // sessions out of memory (they stay in the store).
    const flood = [];
    for (let i = 0; i < OLM_SESSION_CACHE_SIZE + 10; i++) {
      flood.push(junkOlmEvent("@junk:x", encodeBase64(randomBytes(32)), bob));
    }
    await bob.machine.receiveSyncChanges({ toDevice: flood });
    await bob.send(claim);
    assert.equal(bob.data.olm.get(alice.curve25519)?.size, 2, "the claim made a second session");

    // Alice has not read Bob's m.dummy yet: her next message is on her existing session.
    const second = alice.encrypt(hs, bob, alice.payload(bob, "m.dummy", { n: 2 }));
    const result = await bob.machine.receiveSyncChanges({ toDevice: [second] });
    assert.deepEqual(result.failures, []);
    assert.deepEqual(
      result.toDevice.map((e) => e.content),
      [{ n: 2 }],
    );
  });
});
