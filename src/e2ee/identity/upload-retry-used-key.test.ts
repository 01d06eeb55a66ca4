/** A keys upload retried after a lost response never carries a one-time key used in between. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KeysUploadRequest } from "../requests.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";

function uploadIn(requests: readonly { type: string }[]): KeysUploadRequest | undefined {
  return requests.find((r): r is KeysUploadRequest => r.type === "keys_upload");
}

describe("a keys upload retried after its response was lost", () => {
  it("leaves out a one-time key a peer claimed and used meanwhile, so the server cannot hand it out again", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    hs.exhaustOneTimeKeys("@bob:x", "B");
    await bob.machine.receiveSyncChanges({ oneTimeKeyCounts: { signed_curve25519: 0 } });
    const upload = uploadIn(await bob.machine.outgoingRequests());
    assert.ok(upload?.body.one_time_keys !== undefined);
    hs.handle("@bob:x", "B", upload); // stored by the server; the response never arrives
    // A peer claims one of those keys and its first message arrives before the retry.
    const mallory = new RawOlmPeer("@mallory:x", "M");
    mallory.publish(hs);
    const first = mallory.encrypt(hs, bob, mallory.payload(bob, "m.dummy", {}));
    assert.deepEqual((await bob.machine.receiveSyncChanges({ toDevice: [first] })).failures, []);
    const retry = uploadIn(await bob.machine.outgoingRequests());
    assert.ok(retry !== undefined);
    assert.equal(retry.id, upload.id);
    assert.equal(Object.keys(retry.body.one_time_keys ?? {}).length, 49);
    // The fake server refuses a one-time key uploaded again after it was claimed.
    await bob.send(retry);
    // The rest are published; only the used key is replaced, by a new one.
    const next = uploadIn(await bob.machine.outgoingRequests());
    const ids = Object.keys(next?.body.one_time_keys ?? {});
    assert.equal(ids.length, 1);
    assert.ok(!Object.hasOwn(upload.body.one_time_keys ?? {}, ids[0] ?? ""));
  });
});
