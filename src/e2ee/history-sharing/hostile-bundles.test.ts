/**
 * An `m.room_key_bundle` is remembered from anyone (it is only downloaded for the inviter of a room
 * we joined), so what we keep of it must be what the crypto store accepts whatever the sender put
 * in its `file`: extra fields nesting past the store's depth made every retry of the sync step that
 * carried it fail, for good.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OLM_ALGORITHM } from "../devices/device.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";
import { BUNDLE_FILE, nested } from "../test-support/values.ts";
import { ROOM_KEY_BUNDLE_TYPE } from "./bundle.ts";

const ROOM = "!room:x";

/** A bundle from Eve (any user), over a real Olm session, with her self-signed device keys. */
function bundleFrom(eve: RawOlmPeer, hs: FakeHomeserver, bob: TestClient, file: Record<string, unknown>) {
  const deviceKeys = signWithAccount(eve.account, eve.userId, eve.deviceId, {
    user_id: eve.userId,
    device_id: eve.deviceId,
    algorithms: [OLM_ALGORITHM],
    keys: { [`curve25519:${eve.deviceId}`]: eve.curve25519, [`ed25519:${eve.deviceId}`]: eve.ed25519 },
  });
  const payload = eve.payload(bob, ROOM_KEY_BUNDLE_TYPE, { room_id: ROOM, file });
  return eve.encrypt(hs, bob, { ...payload, sender_device_keys: deviceKeys });
}

describe("hostile history-sharing bundles", () => {
  it("extra fields in the bundle's file, nested past the store's depth, are not kept; the step saves", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const eve = new RawOlmPeer("@eve:x", "E");
    eve.publish(hs);
    const hostile = {
      ...BUNDLE_FILE,
      extra: nested(60),
      key: { ...BUNDLE_FILE.key, extra: nested(60), key_ops: ["encrypt", "decrypt", nested(60)] },
      hashes: { ...BUNDLE_FILE.hashes, extra: nested(60) },
    };
    const synced = await bob.machine.receiveSyncChanges({
      toDevice: [bundleFrom(eve, hs, bob, hostile)],
      nextBatch: "s1",
    });
    assert.deepEqual(synced.roomKeyBundles, [{ roomId: ROOM, sender: "@eve:x" }]);
    assert.equal(await bob.store.getNextBatch(), "s1");

    await bob.restart();
    const kept = (await bob.store.getCustomValue("keyroom.history_sharing.v1")) as {
      bundles: { file: unknown }[];
    };
    assert.deepEqual(
      kept.bundles.map((b) => b.file),
      [BUNDLE_FILE],
    );
    // Still remembered for when we accept Eve's invite (it waits for her device list).
    await bob.machine.historySharing.inviteAccepted(ROOM, "@eve:x");
    assert.deepEqual(await bob.machine.historySharing.userIdsToRefresh(), ["@eve:x"]);
  });
});
