/** The sender's curve key as the event spells it: one key, one set of sessions, however written. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";

describe("an Olm sender key spelled another way", () => {
  it("does not let a pre-key message on our fallback key start a second session and be accepted again", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const mallory = new RawOlmPeer("@mallory:x", "M");
    mallory.publish(hs);
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.flush();
    hs.exhaustOneTimeKeys("@bob:x", "B"); // the session starts on Bob's fallback key
    const first = mallory.encrypt(hs, bob, mallory.payload(bob, "org.example.once", {}));
    const accepted = await bob.machine.receiveSyncChanges({ toDevice: [first] });
    assert.deepEqual(accepted.failures, []);
    assert.equal(accepted.toDevice[0]?.encryption?.senderDevice, "M");

    // A server replays it with the same key in padded base64 (it decodes to the same bytes).
    for (const senderKey of [`${mallory.curve25519}=`, mallory.curve25519]) {
      const replay = { ...first, content: { ...first.content, sender_key: senderKey } };
      const result = await bob.machine.receiveSyncChanges({ toDevice: [replay] });
      assert.deepEqual(result.toDevice, [], `replayed with sender_key ${senderKey}`);
      assert.equal(result.failures.length, 1);
    }
  });
});
