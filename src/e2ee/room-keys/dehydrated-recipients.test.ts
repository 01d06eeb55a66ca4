// MSC3814: "clients MUST NOT encrypt to devices marked as being a dehydrated device if they are not
// cross-signed", whatever the room's `shareWith` (matrix-rust-sdk withholds with m.unverified).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "../../crypto/primitives/index.ts";
import { createDehydratedDevice, type DehydratedDeviceUpload } from "../dehydration/dehydrated-device.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:x";
const BOB = "@bob:x";
const CAROL = "@carol:x";
const ROOM = "!room:x";

/** What `PUT …/dehydrated_device` does on a real server: the device, its keys and one-time keys. */
function upload(hs: FakeHomeserver, userId: string, body: DehydratedDeviceUpload): string {
  const d = hs.device(userId, body.device_id);
  for (const [id, k] of Object.entries(body.one_time_keys)) d.oneTimeKeys.set(id, k);
  hs.forgeDeviceKeys(userId, body.device_id, body.device_keys as Parameters<typeof hs.forgeDeviceKeys>[2]);
  return body.device_id;
}

describe("room keys and dehydrated devices (MSC3814)", () => {
  it("shares with a cross-signed dehydrated device, withholds from one its owner did not sign", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: BOB, deviceId: "B" });
    const carol = await TestClient.create(hs, { userId: CAROL, deviceId: "C" });
    await bob.bootstrapCrossSigning();
    const signed = await bob.machine.dehydration.create(randomBytes(32), "d");
    assert.equal(signed.crossSigned, true);
    const bobSigned = upload(hs, BOB, signed.body);
    const bobUnsigned = upload(
      hs,
      BOB,
      createDehydratedDevice({ userId: BOB, key: randomBytes(32), displayName: "d" }).body,
    );
    // Carol has no cross-signing identity: her dehydrated device cannot be cross-signed.
    const carolDehydrated = upload(
      hs,
      CAROL,
      createDehydratedDevice({ userId: CAROL, key: randomBytes(32), displayName: "d" }).body,
    );
    await carol.sync();

    await alice.sendMessage(ROOM, joined(ALICE, BOB, CAROL), "hello"); // shareWith "all" (default)
    const got = (type: string) =>
      hs.sentToDevice
        .filter((m) => m.eventType === type)
        .map((m) => m.to)
        .sort();
    assert.deepEqual(got("m.room.encrypted"), [`${BOB}|B`, `${BOB}|${bobSigned}`, `${CAROL}|C`].sort());
    const withheld = hs.sentToDevice.filter((m) => m.eventType === "m.room_key.withheld");
    assert.deepEqual(
      withheld.map((m) => [m.to, m.content.code]).sort(),
      [
        [`${BOB}|${bobUnsigned}`, "m.unverified"],
        [`${CAROL}|${carolDehydrated}`, "m.unverified"],
      ].sort(),
    );
  });
});
