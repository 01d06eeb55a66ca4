// MSC3814: a dehydrated device does not send messages, so clients drop to-device messages from a
// device marked dehydrated (as matrix-rust-sdk does). Whoever holds the dehydration key holds that
// device's keys: its room keys would otherwise make its events look sent by a cross-signed device.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { MEGOLM_ALGORITHM, OLM_ALGORITHM } from "../devices/device.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";

const ALICE = "@alice:x";
const BOB = "@bob:x";
const ROOM = "!room:x";

function publishDehydrated(hs: FakeHomeserver, peer: RawOlmPeer): Record<string, unknown> {
  const keys = signWithAccount(peer.account, peer.userId, peer.deviceId, {
    user_id: peer.userId,
    device_id: peer.deviceId,
    algorithms: [OLM_ALGORITHM, MEGOLM_ALGORITHM],
    dehydrated: true,
    keys: {
      [`curve25519:${peer.deviceId}`]: peer.curve25519,
      [`ed25519:${peer.deviceId}`]: peer.ed25519,
    },
  });
  hs.forgeDeviceKeys(peer.userId, peer.deviceId, keys);
  return keys;
}

function roomKey(): Record<string, unknown> {
  const s = OutboundGroupSession.create();
  return { algorithm: MEGOLM_ALGORITHM, room_id: ROOM, session_id: s.sessionId, session_key: s.sessionKey() };
}

describe("to-device messages from a dehydrated device (MSC3814)", () => {
  it("are dropped, whether we know the device or it says so in sender_device_keys", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "A" });
    const known = new RawOlmPeer(BOB, "DEHYDRATED");
    publishDehydrated(hs, known);
    await alice.machine.updateTrackedUsers([BOB]);
    await alice.flush();
    assert.ok((await alice.machine.getUserDevices(BOB)).some((d) => d.deviceId === "DEHYDRATED"));

    // A device Alice has not seen, naming itself dehydrated in its signed device keys.
    const unknown = new RawOlmPeer("@carol:x", "DEHY2");
    const unknownKeys = publishDehydrated(new FakeHomeserver(), unknown);
    const events = [
      known.encrypt(hs, alice, known.payload(alice, "m.room_key", roomKey())),
      unknown.encrypt(hs, alice, {
        ...unknown.payload(alice, "m.room_key", roomKey()),
        sender_device_keys: unknownKeys,
      }),
    ];
    const result = await alice.machine.receiveSyncChanges({ toDevice: events, nextBatch: "s1" });
    assert.deepEqual(result.roomKeys, []);
    assert.deepEqual(result.toDevice, []);
    assert.deepEqual(
      result.failures.map((f) => [f.sender, f.code]),
      [
        [BOB, "FROM_DEHYDRATED_DEVICE"],
        ["@carol:x", "FROM_DEHYDRATED_DEVICE"],
      ],
    );

    // An ordinary device's room key still arrives.
    const normal = new RawOlmPeer(BOB, "NORMAL");
    normal.publish(hs);
    const ok = await alice.machine.receiveSyncChanges({
      toDevice: [normal.encrypt(hs, alice, normal.payload(alice, "m.room_key", roomKey()))],
      nextBatch: "s2",
    });
    assert.equal(ok.roomKeys.length, 1);
  });
});
