/** Fallback key rotation when sync keeps saying the key is used while its replacement is on its way. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KeysUploadRequest } from "../requests.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";

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
