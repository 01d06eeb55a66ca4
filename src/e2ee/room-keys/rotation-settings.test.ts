import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";
const MEGOLM = "m.megolm.v1.aes-sha2";
const sessionOf = (e: EncryptedRoomEvent): string => (e.content as { session_id: string }).session_id;

describe("rotation periods follow the room's current m.room.encryption", () => {
  it("a period the new event no longer names falls back to the default, not to the old value", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const members = joined("@alice:x", "@bob:x");
    await alice.machine.setRoomSettings(ROOM, { algorithm: MEGOLM, rotationPeriodMessages: 1 });
    const a = await alice.sendMessage(ROOM, members, "1");
    const b = await alice.sendMessage(ROOM, members, "2");
    assert.notEqual(sessionOf(b), sessionOf(a));
    // The room's new m.room.encryption names no period (and one a room used to ask for can be a
    // longer one than the default, which would then outlive the event that asked for it).
    await alice.machine.setRoomSettings(ROOM, { algorithm: MEGOLM });
    assert.equal((await alice.machine.getRoomSettings(ROOM))?.rotationPeriodMessages, undefined);
    const c = await alice.sendMessage(ROOM, members, "3");
    const d = await alice.sendMessage(ROOM, members, "4");
    assert.equal(sessionOf(d), sessionOf(c));
  });

  it("the user's per-room choices, which name no algorithm, leave the periods as recorded", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    await alice.machine.setRoomSettings(ROOM, {
      algorithm: MEGOLM,
      rotationPeriodMessages: 10,
      rotationPeriodMs: 7_200_000,
    });
    await alice.machine.setRoomSettings(ROOM, { verifyDevices: true, shareWith: "cross_signed" });
    const recorded = await alice.machine.getRoomSettings(ROOM);
    assert.equal(recorded?.rotationPeriodMessages, 10);
    assert.equal(recorded?.rotationPeriodMs, 7_200_000);
    // A new m.room.encryption keeps them.
    await alice.machine.setRoomSettings(ROOM, { algorithm: MEGOLM, rotationPeriodMessages: 20 });
    const again = await alice.machine.getRoomSettings(ROOM);
    assert.deepEqual(
      [again?.rotationPeriodMessages, again?.rotationPeriodMs, again?.verifyDevices, again?.shareWith],
      [20, undefined, true, "cross_signed"],
    );
  });
});

describe("a session whose age cannot be told", () => {
  it("rotates when the clock went back past its creation (as matrix-rust-sdk)", async () => {
    // A clock set ahead made the session; once corrected, its age came out negative and the
    // session outlived every rotation period until real time caught up with the wrong one.
    let t = 1_800_000_000_000;
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: () => t });
    await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: () => t });
    const members = joined("@alice:x", "@bob:x");
    const a = await alice.sendMessage(ROOM, members, "clock ahead");
    assert.equal(sessionOf(await alice.sendMessage(ROOM, members, "same clock")), sessionOf(a));
    t -= 365 * 24 * 60 * 60 * 1000;
    const b = await alice.sendMessage(ROOM, members, "clock corrected");
    assert.notEqual(sessionOf(b), sessionOf(a));
    assert.equal(sessionOf(await alice.sendMessage(ROOM, members, "steady")), sessionOf(b));
  });
});

describe("encryptRoomEvent on its own", () => {
  it("refuses a session past its rotation period until the key is shared (and so rotated) again", async () => {
    let t = 1_800_000_000_000;
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now: () => t });
    await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now: () => t });
    const members = joined("@alice:x", "@bob:x");
    const encrypt = () => alice.machine.encryptRoomEvent(ROOM, "m.room.message", { body: "x" });
    const first = await alice.sendMessage(ROOM, members, "1", { rotationPeriodMessages: 3 });
    await encrypt();
    await encrypt();
    // Three messages on the session: a fourth would go past rotation_period_msgs.
    await assert.rejects(encrypt(), { code: "ROOM_KEY_NOT_SHARED" });
    const next = await alice.sendMessage(ROOM, members, "4");
    assert.notEqual(sessionOf(next), sessionOf(first));
    // And by age: a week on (the default period), the same.
    t += 7 * 24 * 60 * 60 * 1000;
    await assert.rejects(encrypt(), { code: "ROOM_KEY_NOT_SHARED" });
    assert.notEqual(sessionOf(await alice.sendMessage(ROOM, members, "5")), sessionOf(next));
  });
});
