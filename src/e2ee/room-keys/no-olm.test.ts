/**
 * `m.no_olm` is told to a device once, not once per room key (spec, `m.room_key.withheld`: the
 * sender "should only send one" such message, and not another unless an Olm session was
 * established with the device in between), and the record of who was told is bounded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore } from "../../store/memory/memory-store.ts";
import { CLAIM_FAILURE_BACKOFF_MS } from "../claim-backoff.ts";
import { emptyChanges, type MachineContext } from "../machine-context.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_NO_OLM_NOTICES, NoOlmNotices } from "./no-olm.ts";

/** Alice, and Bob whose device B published no one-time key and no fallback key. */
async function aliceAndKeylessBob(now: () => number) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B", now });
  hs.exhaustOneTimeKeys("@bob:x", "B");
  hs.device("@bob:x", "B").fallback = undefined;
  return { hs, alice, bob };
}

/** The `m.no_olm` notices waiting in Bob's device's inbox (taken out). */
function noOlmNotices(hs: FakeHomeserver): Record<string, unknown>[] {
  const inbox = hs.device("@bob:x", "B").inbox.splice(0);
  return inbox
    .filter((m) => m.type === "m.room_key.withheld" && m.content.code === "m.no_olm")
    .map((m) => m.content);
}

describe("m.no_olm withheld notices", () => {
  it("go to a device with no one-time key once, not once per room key", async () => {
    let t = 1_000_000;
    const { hs, alice } = await aliceAndKeylessBob(() => t);
    const members = joined("@alice:x", "@bob:x");

    await alice.sendMessage("!one:x", members, "first room");
    const first = noOlmNotices(hs);
    assert.equal(first.length, 1, "the first share tells Bob's device");
    assert.equal(first[0]?.sender_key, alice.machine.identityKeys.curve25519);
    // About the device, not a session: no room or session named (the spec, matrix-rust-sdk).
    assert.equal(first[0]?.room_id, undefined);
    assert.equal(first[0]?.session_id, undefined);

    // Another room's key, and the first room's next session: the device is not told again.
    await alice.sendMessage("!two:x", members, "second room");
    await alice.machine.discardRoomKey("!one:x");
    await alice.sendMessage("!one:x", members, "first room, next session");
    t += CLAIM_FAILURE_BACKOFF_MS + 1; // the claim is tried again, and fails again
    await alice.sendMessage("!three:x", members, "third room");
    assert.deepEqual(noOlmNotices(hs), [], "no second m.no_olm");

    // Remembered across a restart (persisted with the machine's state).
    await alice.restart();
    t += CLAIM_FAILURE_BACKOFF_MS + 1;
    await alice.sendMessage("!four:x", members, "after a restart");
    assert.deepEqual(noOlmNotices(hs), [], "no m.no_olm after a restart either");
  });

  it("may be told again once an Olm session was set up in between (the spec's exception)", async () => {
    let t = 1_000_000;
    const { hs, alice, bob } = await aliceAndKeylessBob(() => t);
    const members = joined("@alice:x", "@bob:x");
    await alice.sendMessage("!one:x", members, "no session");
    assert.equal(noOlmNotices(hs).length, 1);

    // Bob publishes keys: the next share sets up a session and delivers the key.
    await bob.sync();
    t += CLAIM_FAILURE_BACKOFF_MS + 1;
    await alice.sendMessage("!two:x", members, "with a session");
    const inbox = hs.device("@bob:x", "B").inbox;
    assert.ok(
      inbox.some((m) => m.type === "m.room.encrypted" && m.sender === "@alice:x"),
      "the room key went out over Olm",
    );
    assert.deepEqual(noOlmNotices(hs), []);

    // The device is no longer remembered as told: should a session fail again later, it is told.
    const ctx: MachineContext = {
      userId: "@alice:x",
      deviceId: "A",
      store: alice.store,
      now: () => t,
      tx: emptyChanges(),
    };
    const device = { userId: "@bob:x", deviceId: "B" };
    assert.equal((await new NoOlmNotices(ctx).toTell([device])).length, 1, "told again after a session");
  });

  it(`remembers at most MAX_NO_OLM_NOTICES devices, the newest`, async () => {
    const store = await MemoryCryptoStore.open({ userId: "@alice:x", deviceId: "A" });
    const ctx: MachineContext = {
      userId: "@alice:x",
      deviceId: "A",
      store,
      now: () => 0,
      tx: emptyChanges(),
    };
    const notices = new NoOlmNotices(ctx);
    const devices = Array.from({ length: MAX_NO_OLM_NOTICES + 5 }, (_, i) => ({
      userId: "@mallory:x",
      deviceId: `D${i}`,
    }));
    assert.equal((await notices.toTell(devices)).length, devices.length);
    await store.saveChanges(ctx.tx);
    ctx.tx = emptyChanges();
    const again = await new NoOlmNotices(ctx).toTell(devices);
    assert.deepEqual(
      again.map((d) => d.deviceId),
      ["D0", "D1", "D2", "D3", "D4"],
      "only the oldest were forgotten",
    );
  });
});
