/** Every pre-key message a session decrypted stays refused after that session was pruned. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";
import { MAX_SESSIONS_PER_DEVICE } from "./sessions.ts";

describe("pre-key messages replayed after their session was pruned", () => {
  it("refuses a later pre-key message of a session, not only the one that started it", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const mallory = new RawOlmPeer("@mallory:x", "M");
    mallory.publish(hs);
    hs.exhaustOneTimeKeys("@bob:x", "B"); // sessions start on Bob's fallback key
    const first = mallory.encrypt(hs, bob, mallory.payload(bob, "m.dummy", {}));
    // Bob has not answered: Mallory's next message on that session is a pre-key message too.
    const second = mallory.encrypt(hs, bob, mallory.payload(bob, "org.example.once", {}));
    const ciphertext = second.content.ciphertext as Record<string, { type: number }>;
    assert.equal(ciphertext[bob.machine.identityKeys.curve25519]?.type, 0);
    const accepted = await bob.machine.receiveSyncChanges({ toDevice: [first, second] });
    assert.deepEqual(accepted.failures, []);
    for (let i = 0; i < MAX_SESSIONS_PER_DEVICE; i++) {
      mallory.startSession(hs, bob);
      const event = mallory.encrypt(hs, bob, mallory.payload(bob, "m.dummy", { i }));
      assert.deepEqual((await bob.machine.receiveSyncChanges({ toDevice: [event] })).failures, []);
    }
    for (const restart of [false, true]) {
      if (restart) await bob.restart();
      const replayed = await bob.machine.receiveSyncChanges({ toDevice: [second] });
      assert.deepEqual(replayed.toDevice, [], restart ? "after a restart" : "before a restart");
      assert.deepEqual(
        replayed.failures.map((f) => f.code),
        ["REPLAYED"],
      );
    }
  });
});
