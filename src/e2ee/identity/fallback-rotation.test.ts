/** Fallback key rotation when sync keeps saying the key is used while its replacement is on its way. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KeysUploadRequest } from "../requests.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";
import { OLD_FALLBACK_KEY_LIFETIME_MS } from "./own-device.ts";

function uploadIn(requests: readonly { type: string }[]): KeysUploadRequest | undefined {
  return requests.find((r): r is KeysUploadRequest => r.type === "keys_upload");
}

describe("fallback key rotation", () => {
  it("rotates once per use: a sync that still reports the old key used while the new one uploads does not rotate again", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    hs.exhaustOneTimeKeys("@bob:x", "B");
    // Two peers claim Bob's fallback key; Carol's first message is still on its way.
    const mallory = new RawOlmPeer("@mallory:x", "M");
    const carol = new RawOlmPeer("@carol:x", "C");
    mallory.publish(hs);
    carol.publish(hs);
    mallory.startSession(hs, bob);
    carol.startSession(hs, bob);
    const late = carol.encrypt(hs, bob, carol.payload(bob, "m.dummy", {}));

    // Sync says the fallback key was used: a new one goes out, but the upload fails.
    const stale = hs.syncFor("@bob:x", "B");
    await bob.machine.receiveSyncChanges({ ...stale, nextBatch: "s1" });
    const upload = uploadIn(await bob.machine.outgoingRequests());
    assert.ok(upload?.body.fallback_keys !== undefined, "a new fallback key is offered");
    // The next sync, before the upload went through, still says so.
    await bob.machine.receiveSyncChanges({ ...stale, nextBatch: "s2" });
    const retried = uploadIn(await bob.machine.outgoingRequests());
    assert.deepEqual(retried?.body, upload.body, "the same upload is retried");
    await bob.send(retried);
    const published = hs.device("@bob:x", "B").fallback?.keyId;

    // No second rotation: that would throw away the key Carol's message was made on.
    const after = uploadIn(await bob.machine.outgoingRequests());
    assert.equal(after?.body.fallback_keys, undefined, "no further fallback key");
    await bob.flush();
    assert.equal(hs.device("@bob:x", "B").fallback?.keyId, published);
    const result = await bob.machine.receiveSyncChanges({ toDevice: [late], nextBatch: "s3" });
    assert.deepEqual(result.failures, []);
  });
});

describe("the previous fallback key's grace period", () => {
  it("still decrypts pre-key messages on it that arrive in the backlog after an hour offline", async () => {
    const hs = new FakeHomeserver();
    let now = 1_700_000_000_000;
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: () => now });
    hs.exhaustOneTimeKeys("@bob:x", "B");
    const carol = new RawOlmPeer("@carol:x", "C");
    carol.publish(hs);
    const oldKey = hs.device("@bob:x", "B").fallback?.key.key;
    assert.ok(oldKey !== undefined);
    carol.startSession(hs, bob);
    await bob.sync(); // the key was used: a new one is published
    assert.notEqual(hs.device("@bob:x", "B").fallback?.used, true);
    // Carol's message waits on the server while Bob is offline for two hours, behind others: the
    // server hands the backlog out over several syncs.
    const plain = { type: "org.example.ping", sender: "@carol:x", content: {} };
    const inbox = hs.device("@bob:x", "B").inbox;
    inbox.push(plain);
    now += 2 * OLD_FALLBACK_KEY_LIFETIME_MS;
    assert.equal((await bob.sync()).toDevice[0]?.type, "org.example.ping");
    inbox.push(carol.encrypt(hs, bob, carol.payload(bob, "m.dummy", {})));
    const result = await bob.sync();
    assert.deepEqual(result.failures, []);
    assert.equal(result.toDevice[0]?.type, "m.dummy");
    // The backlog is drained (a sync without to-device events): the old key goes.
    await bob.sync();
    // Afterwards the old key is gone: a session started on it now fails.
    const dave = new RawOlmPeer("@dave:x", "D");
    const onOld = dave.account.createOutboundSession(bob.machine.identityKeys.curve25519, oldKey);
    const message = onOld.encrypt(JSON.stringify(dave.payload(bob, "m.dummy", {})));
    const content = {
      algorithm: "m.olm.v1.curve25519-aes-sha2",
      sender_key: dave.curve25519,
      ciphertext: { [bob.machine.identityKeys.curve25519]: message },
    };
    const after = await bob.machine.receiveSyncChanges({
      toDevice: [{ type: "m.room.encrypted", sender: "@dave:x", content }],
    });
    assert.deepEqual(
      after.failures.map((f) => f.code),
      ["NO_SESSION"],
    );
  });
});
