// A share that found nothing to do is reused by the next send while nothing it read changed
// (settled-share.ts). Each case settles a room first (two sends: the first creates the session, the
// second finds nothing to do), then changes one thing the decision reads, and checks that the next
// send judges again.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";
const ALICE = "@alice:x";
const BOB = "@bob:x";
const sessionOf = (e: EncryptedRoomEvent): string => (e.content as { session_id: string }).session_id;

async function trio(now?: () => number) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: ALICE, deviceId: "A", now });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "B", now });
  const carol = await TestClient.create(hs, { userId: "@carol:x", deviceId: "C", now });
  await bob.sync();
  await carol.sync();
  return { hs, alice, bob, carol };
}

/** Alice's room, settled: two sends with nothing new in between. */
async function settle(alice: TestClient, members = joined(ALICE, BOB), settings = {}) {
  const first = await alice.sendMessage(ROOM, members, "first", settings);
  const second = await alice.sendMessage(ROOM, members, "settled", settings);
  assert.equal(sessionOf(second), sessionOf(first));
  return second;
}

const withheldCodes = (hs: FakeHomeserver, from: number) =>
  hs.sentToDevice
    .slice(from)
    .filter((m) => m.eventType === "m.room_key.withheld")
    .map((m) => [m.to, m.content.code]);

describe("a settled room-key share is judged again", () => {
  it("when a member logs in a new device", async () => {
    const { hs, alice, bob } = await trio();
    const settled = await settle(alice);
    const bob2 = await TestClient.create(hs, { userId: BOB, deviceId: "B2" });
    // The server's device_lists.changed: Alice queries Bob's devices again.
    await alice.machine.receiveKeysChanges([BOB], []);
    await alice.flush();
    const next = await alice.sendMessage(ROOM, joined(ALICE, BOB), "for B2 too");
    assert.equal(sessionOf(next), sessionOf(settled));
    await bob2.sync();
    assert.equal((await bob2.machine.decryptRoomEvent(next, ROOM)).content.body, "for B2 too");
    await bob.sync();
  });

  it("when a device that holds the key is blacklisted", async () => {
    const { hs, alice, bob } = await trio();
    const settled = await settle(alice);
    await alice.machine.setDeviceTrust(BOB, "B", "blacklisted");
    const sent = hs.sentToDevice.length;
    const next = await alice.sendMessage(ROOM, joined(ALICE, BOB), "not for B");
    assert.notEqual(sessionOf(next), sessionOf(settled));
    assert.deepEqual(withheldCodes(hs, sent), [[`${BOB}|B`, "m.blacklisted"]]);
    await bob.sync();
    await assert.rejects(bob.machine.decryptRoomEvent(next, ROOM), { code: "WITHHELD" });
  });

  it("when a member is verified (an identity change only), under shareWith verified", async () => {
    const { hs, alice, bob } = await trio();
    await alice.bootstrapCrossSigning();
    await bob.bootstrapCrossSigning();
    await alice.machine.receiveKeysChanges([BOB], []);
    await alice.flush();
    const sent = hs.sentToDevice.length;
    await settle(alice, joined(ALICE, BOB), { shareWith: "verified" });
    assert.deepEqual(withheldCodes(hs, sent), [[`${BOB}|B`, "m.unverified"]]);
    await alice.machine.markUserVerified(BOB);
    await alice.flush();
    const next = await alice.sendMessage(ROOM, joined(ALICE, BOB), "verified now", { shareWith: "verified" });
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(next, ROOM)).content.body, "verified now");
  });

  it("when a member joins", async () => {
    const { alice, bob, carol } = await trio();
    const settled = await settle(alice);
    const next = await alice.sendMessage(ROOM, joined(ALICE, BOB, "@carol:x"), "with carol");
    assert.equal(sessionOf(next), sessionOf(settled));
    await carol.sync();
    assert.equal((await carol.machine.decryptRoomEvent(next, ROOM)).content.body, "with carol");
    await bob.sync();
  });

  it("when a member leaves", async () => {
    const { alice, bob, carol } = await trio();
    const settled = await settle(alice, joined(ALICE, BOB, "@carol:x"));
    const next = await alice.sendMessage(ROOM, joined(ALICE, BOB), "carol left");
    assert.notEqual(sessionOf(next), sessionOf(settled));
    await carol.sync();
    await assert.rejects(carol.machine.decryptRoomEvent(next, ROOM), { code: "UNKNOWN_SESSION" });
    await bob.sync();
  });

  it("when the room's settings change", async () => {
    const { hs, alice, bob } = await trio();
    const settled = await settle(alice);
    const sent = hs.sentToDevice.length;
    const next = await alice.sendMessage(ROOM, joined(ALICE, BOB), "verified only", {
      shareWith: "verified",
    });
    // Bob's device holds the key but may no longer read the room: a new session, withheld from him.
    assert.notEqual(sessionOf(next), sessionOf(settled));
    assert.deepEqual(withheldCodes(hs, sent), [[`${BOB}|B`, "m.unverified"]]);
    await bob.sync();
    await assert.rejects(bob.machine.decryptRoomEvent(next, ROOM), { code: "WITHHELD" });
  });

  it("when a device that holds the key starts a new Olm session", async () => {
    let t = 1_700_000_000_000;
    const { hs, alice, bob } = await trio(() => t);
    // An Olm session first (a key in another room, which Bob reads), then the room settled.
    await alice.sendMessage("!warmup:x", joined(ALICE, BOB), "warm-up");
    await bob.sync();
    const settled = await settle(alice);
    // Bob's store loses its Olm sessions before the room's key arrives: he cannot decrypt it and
    // starts a new session (m.dummy), which Alice notes.
    bob.data.olm.clear();
    await bob.restart();
    await bob.sync();
    await alice.sync();
    t += 1000;
    const sent = hs.sentToDevice.length;
    await alice.sendMessage(ROOM, joined(ALICE, BOB), "after");
    const again = hs.sentToDevice
      .slice(sent)
      .filter((m) => m.to === `${BOB}|B` && m.eventType === "m.room.encrypted");
    assert.equal(again.length, 1, "the room key to Bob again");
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(settled, ROOM)).content.body, "settled");
  });
});
