/**
 * What history sharing stores of a bundle stays small: anyone may send us bundles and we remember
 * up to `MAX_PENDING_BUNDLES` of them, so a bundle whose `file.url` is longer than an `mxc://` URI
 * can be (`MAX_BUNDLE_URL_LENGTH`) is malformed. Before, 100 bundles with 40 KB URLs (what fits in a to-device message) made a ~4 MB
 * value, written again with each new bundle.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OLM_ALGORITHM } from "../devices/device.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";
import { BUNDLE_FILE } from "../test-support/values.ts";
import { MAX_BUNDLE_URL_LENGTH, parseRoomKeyBundleContent, ROOM_KEY_BUNDLE_TYPE } from "./bundle.ts";
import { MAX_PENDING_BUNDLES } from "./pending.ts";

const CUSTOM_KEY = "keyroom.history_sharing.v1";

/** An `mxc://` URL of exactly `length` characters. */
function urlOf(length: number): string {
  const prefix = "mxc://x/";
  return prefix + "m".repeat(length - prefix.length);
}

function bundleFrom(eve: RawOlmPeer, hs: FakeHomeserver, bob: TestClient, roomId: string, url: string) {
  const deviceKeys = signWithAccount(eve.account, eve.userId, eve.deviceId, {
    user_id: eve.userId,
    device_id: eve.deviceId,
    algorithms: [OLM_ALGORITHM],
    keys: { [`curve25519:${eve.deviceId}`]: eve.curve25519, [`ed25519:${eve.deviceId}`]: eve.ed25519 },
  });
  const payload = eve.payload(bob, ROOM_KEY_BUNDLE_TYPE, { room_id: roomId, file: { ...BUNDLE_FILE, url } });
  return eve.encrypt(hs, bob, { ...payload, sender_device_keys: deviceKeys });
}

async function storedBundles(
  bob: TestClient,
): Promise<{ bundles: { roomId: string; file: { url: string } }[] }> {
  return (await bob.store.getCustomValue(CUSTOM_KEY)) as {
    bundles: { roomId: string; file: { url: string } }[];
  };
}

describe("stored history-sharing bundles", () => {
  it("a bundle URL past MAX_BUNDLE_URL_LENGTH is malformed (no throw)", () => {
    const content = (url: string) => ({ room_id: "!room:x", file: { ...BUNDLE_FILE, url } });
    assert.equal(
      parseRoomKeyBundleContent(content(urlOf(MAX_BUNDLE_URL_LENGTH)))?.file.url.length,
      MAX_BUNDLE_URL_LENGTH,
    );
    assert.equal(parseRoomKeyBundleContent(content(urlOf(MAX_BUNDLE_URL_LENGTH + 1))), undefined);
    assert.equal(parseRoomKeyBundleContent(content(urlOf(60_000))), undefined);
    assert.equal(parseRoomKeyBundleContent(content(`mxc://x/\uD800`)), undefined);
    assert.equal(parseRoomKeyBundleContent(content("mxc://x/a\u0000b")), undefined, "not printable ASCII");
    assert.equal(parseRoomKeyBundleContent(content("mxc://x/\u00e9")), undefined);
  });

  it("bundles with overlong URLs are not remembered; the step saves; the stored set stays small", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const eve = new RawOlmPeer("@eve:x", "E");
    eve.publish(hs);

    const long = await bob.machine.receiveSyncChanges({
      toDevice: [bundleFrom(eve, hs, bob, "!long:x", urlOf(40_000))],
      nextBatch: "s1",
    });
    assert.deepEqual(long.failures, []);
    assert.deepEqual(long.roomKeyBundles, []);
    assert.equal(long.toDevice.length, 1, "the event still passes through (without its file)");
    assert.equal(await bob.store.getNextBatch(), "s1");
    assert.equal(await bob.store.getCustomValue(CUSTOM_KEY), undefined);

    // As many bundles as are kept, each with the longest URL we take: the value stays small.
    const toDevice = [];
    for (let i = 0; i < MAX_PENDING_BUNDLES + 1; i++) {
      toDevice.push(bundleFrom(eve, hs, bob, `!room${i}:x`, urlOf(MAX_BUNDLE_URL_LENGTH)));
    }
    toDevice.push(bundleFrom(eve, hs, bob, "!long2:x", urlOf(MAX_BUNDLE_URL_LENGTH + 1)));
    const synced = await bob.machine.receiveSyncChanges({ toDevice, nextBatch: "s2" });
    assert.equal(synced.roomKeyBundles.length, MAX_PENDING_BUNDLES + 1);
    await bob.restart();
    const stored = await storedBundles(bob);
    assert.equal(stored.bundles.length, MAX_PENDING_BUNDLES);
    assert.ok(stored.bundles.every((b) => b.file.url.length <= MAX_BUNDLE_URL_LENGTH));
    assert.ok(!stored.bundles.some((b) => b.roomId.startsWith("!long")));
    const bytes = JSON.stringify(stored).length;
    assert.ok(bytes < MAX_PENDING_BUNDLES * 1024, `stored value is ${bytes} characters`);
  });

  it("a bundle an older Keyroom stored with an overlong URL is dropped when read back", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const record = (roomId: string, url: string) => ({
      roomId,
      sender: "@eve:x",
      senderKey: "curvekey",
      file: { ...BUNDLE_FILE, url },
      receivedAt: 1,
    });
    await bob.store.saveChanges({
      customValues: {
        [CUSTOM_KEY]: {
          bundles: [record("!long:x", urlOf(60_000)), record("!ok:x", BUNDLE_FILE.url)],
          accepted: [],
        },
      },
    });
    await bob.restart();
    // Any change rewrites the set from what was read back: the long one is gone.
    await bob.machine.historySharing.inviteAccepted("!other:x", "@eve:x");
    const stored = await storedBundles(bob);
    assert.deepEqual(
      stored.bundles.map((b) => b.roomId),
      ["!ok:x"],
    );
  });
});
