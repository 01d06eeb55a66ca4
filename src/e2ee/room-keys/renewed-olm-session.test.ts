/**
 * A device that starts a new Olm session with us (it lost its sessions, or could not decrypt ours,
 * and unwedged onto a new one with `m.dummy`) is given our room keys in use again, from the index
 * it was first given, so it decrypts what was sent before. Once per key and new session, and a
 * device starting sessions in a loop gets no more than once per RESHARE_INTERVAL_MS.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RESHARE_INTERVAL_MS } from "../olm-sessions/renewed.ts";
import { UNWEDGE_INTERVAL_MS } from "../olm-sessions/sessions.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";
const members = joined("@alice:x", "@bob:x");

/** The encrypted room keys Alice sent Bob's device, counted from `from`. */
function roomKeysToBob(hs: FakeHomeserver, from: number): number {
  return hs.sentToDevice
    .slice(from)
    .filter((m) => m.from === "@alice:x" && m.to === "@bob:x|B" && m.eventType === "m.room.encrypted").length;
}

/** Alice sends Bob's device something over Olm (which he cannot decrypt once his sessions are gone). */
async function pokeBob(alice: TestClient): Promise<void> {
  const { request } = await alice.machine.encryptToDevice(
    "m.test",
    [{ userId: "@bob:x", deviceId: "B" }],
    {},
  );
  assert.ok(request);
  await alice.send(request);
}

/** Alice and Bob with an Olm session, Bob tracking Alice; then Bob's store loses its Olm sessions. */
async function bobLosesHisSessions(now: () => number) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now });
  await bob.machine.updateTrackedUsers(["@alice:x"]);
  await bob.sync();
  // A first room key sets up the Olm session, and Bob reads it.
  const warmup = await alice.sendMessage("!warmup:x", members, "warm-up");
  await bob.sync();
  assert.equal((await bob.machine.tryDecryptRoomEvent(warmup, "!warmup:x")).ok, true);
  bob.data.olm.clear();
  await bob.restart();
  return { hs, alice, bob };
}

describe("a device that starts a new Olm session with us", () => {
  it("is given the room key again and decrypts a message sent before", async () => {
    let t = 1_700_000_000_000;
    const { hs, alice, bob } = await bobLosesHisSessions(() => t);
    const before = await alice.sendMessage(ROOM, members, "sent before");

    // Bob cannot decrypt the room key (his session is gone): he starts a new one, with m.dummy.
    const failed = await bob.sync();
    assert.deepEqual(
      failed.failures.map((f) => f.code),
      ["NO_SESSION"],
    );
    assert.equal((await bob.machine.tryDecryptRoomEvent(before, ROOM)).ok, false);
    await alice.sync();

    // Alice's next send gives Bob the key again, from index 0.
    const sent = hs.sentToDevice.length;
    t += 1000;
    const after = await alice.sendMessage(ROOM, members, "sent after");
    assert.equal(roomKeysToBob(hs, sent), 1, "one room key to Bob, again");
    await bob.sync();
    const decrypted = await bob.machine.tryDecryptRoomEvent(before, ROOM);
    assert.ok(decrypted.ok, "the message sent before decrypts");
    assert.equal(decrypted.event.content.body, "sent before");
    assert.equal((await bob.machine.tryDecryptRoomEvent(after, ROOM)).ok, true);

    // Once only: the next send (also after a restart) shares nothing.
    const later = hs.sentToDevice.length;
    await alice.sendMessage(ROOM, members, "once more");
    await alice.restart();
    await alice.sendMessage(ROOM, members, "after a restart");
    assert.equal(roomKeysToBob(hs, later), 0, "no second copy");
  });

  it("is given each key again at most once per RESHARE_INTERVAL_MS however many sessions it starts", async () => {
    let t = 1_700_000_000_000;
    const { hs, alice, bob } = await bobLosesHisSessions(() => t);
    await alice.sendMessage(ROOM, members, "sent before");
    await bob.sync(); // a new session
    await alice.sync();
    const sent = hs.sentToDevice.length;
    await alice.sendMessage(ROOM, members, "re-shared");
    assert.equal(roomKeysToBob(hs, sent), 1);
    await bob.sync();

    // Bob loses his sessions again within the interval: he starts another (past his own
    // unwedging interval), but Alice does not give the key a third time until the interval ends.
    t += UNWEDGE_INTERVAL_MS / 2;
    bob.data.olm.clear();
    await bob.restart();
    await pokeBob(alice);
    await bob.sync();
    await alice.sync();
    assert.equal(hs.sentToDevice.at(-1)?.to, "@alice:x|A", "Bob started another session");
    const again = hs.sentToDevice.length;
    await alice.sendMessage(ROOM, members, "within the interval");
    assert.equal(roomKeysToBob(hs, again), 0, "not within the interval");

    t += RESHARE_INTERVAL_MS;
    bob.data.olm.clear();
    await bob.restart();
    await pokeBob(alice);
    await bob.sync();
    await alice.sync();
    assert.equal(hs.sentToDevice.at(-1)?.to, "@alice:x|A", "and another");
    const third = hs.sentToDevice.length;
    await alice.sendMessage(ROOM, members, "after the interval");
    assert.equal(roomKeysToBob(hs, third), 1, "again once the interval passed");
  });
});
