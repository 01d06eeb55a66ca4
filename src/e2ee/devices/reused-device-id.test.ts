// A device ID used again after its device was deleted (a logout, then a login that asks for the
// same ID, with a new crypto store and so new keys) was refused as a key change for good: the new
// device never got a room key. Like matrix-rust-sdk, a deleted device's ID is free again: the new
// keys make a new device, with no trust carried over from the old one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";

describe("a deleted device's ID used again", () => {
  it("is a new device: it gets the room key and none of the old device's trust", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await bob.sync();
    const members = joined("@alice:x", "@bob:x");
    await alice.sendMessage(ROOM, members, "before");
    await alice.machine.setDeviceTrust("@bob:x", "B", "verified");
    hs.deleteDevice("@bob:x", "B");
    await alice.sync();
    assert.deepEqual(await alice.machine.getUserDevices("@bob:x"), []);
    await alice.sendMessage(ROOM, members, "while bob is away");
    // Bob logs in again asking for device ID B, with a new crypto store.
    const again = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    await alice.sync();
    const device = await alice.machine.getDevice("@bob:x", "B");
    assert.equal(device?.ed25519, again.machine.identityKeys.ed25519);
    assert.equal(device?.trust, "unset");
    const event = await alice.sendMessage(ROOM, members, "welcome back");
    await again.sync();
    assert.equal((await again.machine.decryptRoomEvent(event, ROOM)).content.body, "welcome back");
  });

  it("gets the room key, a new one, when no message went out while the ID was free", async () => {
    // The room key Bob's deleted device held names it by ID only: the new device under the same
    // ID counted as holding it, so it was neither replaced nor given to the new device.
    let t = 1_700_000_000_000;
    const now = () => t;
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now });
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now });
    await bob.sync();
    const members = joined("@alice:x", "@bob:x");
    const before = await alice.sendMessage(ROOM, members, "before");
    t += 1000;
    hs.deleteDevice("@bob:x", "B");
    await alice.sync();
    t += 1000;
    const again = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now });
    await alice.sync();
    t += 1000;
    const event = await alice.sendMessage(ROOM, members, "welcome back");
    const sessionOf = (e: typeof event) => (e.content as { session_id: string }).session_id;
    assert.notEqual(sessionOf(event), sessionOf(before), "the deleted device's room key is replaced");
    await again.sync();
    assert.equal((await again.machine.decryptRoomEvent(event, ROOM)).content.body, "welcome back");
    // Replaced once: the new room key stays in use, after a restart too.
    await alice.restart();
    t += 1000;
    const later = await alice.sendMessage(ROOM, members, "later");
    assert.equal(sessionOf(later), sessionOf(event));
  });
});
