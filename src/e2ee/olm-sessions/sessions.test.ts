import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { CLAIM_FAILURE_BACKOFF_MS } from "../machine-requests.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { UNWEDGE_INTERVAL_MS } from "./sessions.ts";

const ROOM = "!room:example.org";

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("Olm sessions", () => {
  it("unwedges a broken session with a new one and an m.dummy, at most once an interval", async () => {
    const hs = new FakeHomeserver();
    const time = clock();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: time.now });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: time.now });
    await bob.sync();
    await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "hi");
    await bob.sync();
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.flush();
    time.advance(UNWEDGE_INTERVAL_MS + 1);

    // A normal message no session of Bob's can decrypt (Alice's state diverged from his).
    const garbage = () => ({
      type: "m.room.encrypted",
      sender: "@alice:x",
      content: {
        algorithm: "m.olm.v1.curve25519-aes-sha2",
        sender_key: alice.machine.identityKeys.curve25519,
        ciphertext: {
          [bob.machine.identityKeys.curve25519]: { type: 1, body: encodeBase64(randomBytes(80)) },
        },
      },
    });
    const claimsBefore = hs.sentToDevice.length;
    const result = await bob.machine.receiveSyncChanges({ toDevice: [garbage()] });
    assert.deepEqual(
      result.failures.map((f) => f.code),
      ["NO_SESSION"],
    );
    const requests = await bob.machine.outgoingRequests();
    const claim = requests.find((r) => r.type === "keys_claim");
    assert.ok(claim, "a new session is claimed for the wedged device");
    await bob.flush();
    const dummy = hs.sentToDevice
      .slice(claimsBefore)
      .find((m) => m.from === "@bob:x" && m.to === "@alice:x|A");
    assert.ok(dummy, "an m.dummy goes out over the new session");
    const aliceSync = await alice.sync();
    assert.equal(aliceSync.failures.length, 0);
    assert.ok(aliceSync.toDevice.some((e) => e.type === "m.dummy" && e.encryption !== undefined));

    // Another failure right away does not start yet another session.
    await bob.machine.receiveSyncChanges({ toDevice: [garbage()] });
    assert.equal((await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_claim").length, 0);
  });

  it("prefers the most recently used session", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await alice.sync();
    await bob.sync();
    const members = joined("@alice:x", "@bob:x");
    // Both sides start a session at once: two sessions exist between them.
    await alice.prepareRoom("!a:x", members);
    await bob.prepareRoom("!b:x", members);
    await alice.sync();
    await bob.sync();
    // Bob last used the session Alice's pre-key message created: he encrypts with it next.
    await bob.machine.discardRoomKey("!b:x");
    await bob.prepareRoom("!b:x", members);
    const last = hs.sentToDevice
      .filter((m) => m.from === "@bob:x" && m.eventType === "m.room.encrypted")
      .at(-1);
    const ciphertext = last?.content.ciphertext as Record<string, { type: number }>;
    // Bob's own session never got a reply (it would still send pre-key messages, type 0).
    assert.equal(ciphertext[alice.machine.identityKeys.curve25519]?.type, 1);
    const synced = await alice.sync();
    assert.equal(synced.failures.length, 0);
    assert.equal(synced.roomKeys.length, 1);
  });

  it("drops a to-device message whose payload names another sender", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const mallory = await TestClient.create(hs, { userId: "@mallory:x", deviceId: "M" });
    await bob.sync();
    await mallory.prepareRoom(ROOM, joined("@mallory:x", "@bob:x"));
    // A hostile server relabels Mallory's message as Alice's.
    for (const m of hs.device("@bob:x", "B").inbox) m.sender = alice.userId;
    const result = await bob.machine.receiveSyncChanges(hs.syncFor("@bob:x", "B"));
    assert.deepEqual(
      result.failures.map((f) => f.code),
      ["SENDER_MISMATCH"],
    );
    assert.equal(result.roomKeys.length, 0);
  });

  it("drops a to-device message not addressed to us", async () => {
    const hs = new FakeHomeserver();
    await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const result = await bob.machine.receiveSyncChanges({
      toDevice: [
        {
          type: "m.room.encrypted",
          sender: "@alice:x",
          content: { algorithm: "m.olm.v1.curve25519-aes-sha2", sender_key: "AAAA", ciphertext: {} },
        },
        { type: "m.room.encrypted", sender: "@alice:x", content: { algorithm: "m.megolm.v1.aes-sha2" } },
        "not an event",
      ],
    });
    assert.deepEqual(
      result.failures.map((f) => f.code),
      ["NOT_FOR_US", "MALFORMED_EVENT"],
    );
  });

  it("fetches the keys of an unknown device whose session broke, then unwedges it", async () => {
    const hs = new FakeHomeserver();
    const time = clock();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: time.now });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: time.now });
    const result = await bob.machine.receiveSyncChanges({
      toDevice: [
        {
          type: "m.room.encrypted",
          sender: "@alice:x",
          content: {
            algorithm: "m.olm.v1.curve25519-aes-sha2",
            sender_key: alice.machine.identityKeys.curve25519,
            ciphertext: {
              [bob.machine.identityKeys.curve25519]: { type: 1, body: encodeBase64(randomBytes(80)) },
            },
          },
        },
      ],
    });
    assert.deepEqual(
      result.failures.map((f) => f.code),
      ["NO_SESSION"],
    );
    await bob.flush(); // queries Alice, then claims a key and sends m.dummy
    const synced = await alice.sync();
    assert.ok(synced.toDevice.some((e) => e.type === "m.dummy" && e.sender === "@bob:x"));
  });

  it("does not spin on a wedged device that has no keys left to claim", async () => {
    const hs = new FakeHomeserver();
    const time = clock();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: time.now });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: time.now });
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.sync();
    // A working session first, which later breaks.
    await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "hi");
    await bob.sync();
    time.advance(UNWEDGE_INTERVAL_MS + 1);
    hs.exhaustOneTimeKeys("@alice:x", "A");
    hs.device("@alice:x", "A").fallback = undefined;
    await bob.machine.receiveSyncChanges({
      toDevice: [
        {
          type: "m.room.encrypted",
          sender: "@alice:x",
          content: {
            algorithm: "m.olm.v1.curve25519-aes-sha2",
            sender_key: alice.machine.identityKeys.curve25519,
            ciphertext: {
              [bob.machine.identityKeys.curve25519]: { type: 1, body: encodeBase64(randomBytes(80)) },
            },
          },
        },
      ],
    });
    await bob.flush(); // one claim, which yields nothing: the loop settles
    assert.deepEqual(await bob.machine.outgoingRequests(), []);
    time.advance(CLAIM_FAILURE_BACKOFF_MS);
    assert.equal((await bob.machine.outgoingRequests()).filter((r) => r.type === "keys_claim").length, 1);
  });
});
