import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { Account } from "../../crypto/olm/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { DecryptionError, type DecryptionFailureCode } from "../errors.ts";
import { MAX_ROOM_EVENT_CIPHERTEXT_BYTES } from "../limits.ts";
import { OlmMachine } from "../machine.ts";
import { signWithAccount } from "../signing.ts";
import { bobTrackingAlice, FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { REPLAY_FLUSH_BATCH } from "./replay.ts";
import type { EncryptedRoomEvent } from "./room-events.ts";

const ROOM = "!room:example.org";

function failsWith(code: DecryptionFailureCode) {
  return (e: unknown): boolean => e instanceof DecryptionError && e.code === code;
}

const setup = bobTrackingAlice;

describe("room event decryption", () => {
  it("rejects a replayed message index under another event ID", async () => {
    const { alice, bob } = await setup();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "once");
    await bob.sync();
    await bob.machine.decryptRoomEvent(event, ROOM);
    // The same event again (a re-fetch) is fine.
    await bob.machine.decryptRoomEvent(event, ROOM);
    await assert.rejects(
      bob.machine.decryptRoomEvent({ ...event, event_id: "$other" }, ROOM),
      failsWith("REPLAYED"),
    );
    // Also after a restart: replay records are persisted.
    await bob.restart();
    await assert.rejects(
      bob.machine.decryptRoomEvent({ ...event, event_id: "$third" }, ROOM),
      failsWith("REPLAYED"),
    );
  });

  it("decrypts a batch in one step: outcomes in order, failures as values, replays and sessions from the store after a restart", async () => {
    const { alice, bob } = await setup();
    const members = joined("@alice:x", "@bob:x");
    const other = "!other:example.org";
    const events = [
      await alice.sendMessage(ROOM, members, "one"),
      await alice.sendMessage(other, members, "two"),
      await alice.sendMessage(ROOM, members, "three"),
    ];
    await bob.sync();
    await bob.restart(); // every session comes from the store, read ahead in one call
    const batch = [
      { event: events[0], roomId: ROOM },
      { event: events[1], roomId: other },
      {
        event: { ...events[2], content: { ...(events[2]?.content as object), session_id: "unknown" } },
        roomId: ROOM,
      },
      { event: { ...events[0], event_id: "$replayed" }, roomId: ROOM },
      { event: { ...events[0], content: 7 }, roomId: ROOM },
      { event: events[2], roomId: ROOM },
    ] as { event: EncryptedRoomEvent; roomId: string }[];
    const outcomes = await bob.machine.tryDecryptRoomEvents(batch);
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? o.event.content.body : o.error.code)),
      ["one", "two", "UNKNOWN_SESSION", "REPLAYED", "MALFORMED_EVENT", "three"],
    );
    assert.deepEqual(await bob.machine.tryDecryptRoomEvents([]), []);
    // The unknown session's event waits for its key like a single decryption's.
    assert.equal(bob.machine.pendingEventCount, 1);
    // The batch's replay records were saved with it: a restart still refuses the replay.
    await bob.restart();
    const again = await bob.machine.tryDecryptRoomEvents([
      { event: { ...(events[1] as EncryptedRoomEvent), event_id: "$again" }, roomId: other },
      { event: events[1] as EncryptedRoomEvent, roomId: other },
    ]);
    assert.deepEqual(
      again.map((o) => (o.ok ? o.event.content.body : o.error.code)),
      ["REPLAYED", "two"],
    );
  });

  it("reads a batch's senders' devices in one store call after a restart", async () => {
    const { hs, alice, bob } = await setup();
    const carol = await TestClient.create(hs, { userId: "@carol:x", deviceId: "C" });
    await bob.machine.updateTrackedUsers(["@carol:x"]);
    await bob.sync();
    const members = joined("@alice:x", "@bob:x", "@carol:x");
    const events = [
      await alice.sendMessage(ROOM, members, "from alice"),
      await carol.sendMessage(ROOM, members, "from carol"),
      await alice.sendMessage(ROOM, members, "alice again"),
    ];
    await bob.sync();
    await bob.machine.close();
    await bob.store.close();
    const calls = { getUserDevices: 0, getDevicesOfUsers: 0 };
    const inner = await MemoryCryptoStore.open({
      userId: bob.userId,
      deviceId: bob.deviceId,
      data: bob.data,
    });
    const store = new Proxy(inner, {
      get(target, key) {
        if (key === "getUserDevices" || key === "getDevicesOfUsers") calls[key]++;
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const machine = await OlmMachine.open({ ...bob.options, store });
    const outcomes = await machine.tryDecryptRoomEvents(
      events.map((event) => ({ event: event as EncryptedRoomEvent, roomId: ROOM })),
    );
    assert.deepEqual(
      outcomes.map((o) =>
        o.ok ? [o.event.content.body, o.event.senderDevice, o.event.trust] : o.error.code,
      ),
      [
        ["from alice", "A", "unverified"],
        ["from carol", "C", "unverified"],
        ["alice again", "A", "unverified"],
      ],
    );
    assert.deepEqual(calls, { getUserDevices: 0, getDevicesOfUsers: 1 });
    await machine.close();
  });

  it("rejects an event whose sender is not the owner of the session", async () => {
    const { hs, alice, bob } = await setup();
    const mallory = await TestClient.create(hs, { userId: "@mallory:x", deviceId: "M" });
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.sync();
    const members = joined("@mallory:x", "@bob:x", "@alice:x");
    const event = await mallory.sendMessage(ROOM, members, "I am Alice");
    await bob.sync();
    const forged = {
      ...event,
      event_id: "$forged",
      sender: alice.userId,
      content: { ...(event.content as object), device_id: "A" },
    };
    await assert.rejects(bob.machine.decryptRoomEvent(forged, ROOM), failsWith("MISMATCHED_SENDER"));
    assert.equal((await bob.machine.decryptRoomEvent(event, ROOM)).sender, "@mallory:x");
  });

  it("marks a sender key that does not match the named device", async () => {
    const { alice, bob } = await setup();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "hi");
    await bob.sync();
    const { hs } = bob;
    const alice2 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A2" });
    await bob.sync();
    void alice2;
    const misattributed = { ...event, content: { ...(event.content as object), device_id: "A2" } };
    assert.equal((await bob.machine.decryptRoomEvent(misattributed, ROOM)).trust, "mismatched_sender_key");
  });

  it("does not find a room's key under another room", async () => {
    const { alice, bob } = await setup();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "here");
    await bob.sync();
    await assert.rejects(bob.machine.decryptRoomEvent(event, "!elsewhere:x"), failsWith("UNKNOWN_SESSION"));
  });

  it("rejects a payload encrypted for another room", async () => {
    const { hs, bob } = await setup();
    const mallory = await TestClient.create(hs, { userId: "@mallory:x", deviceId: "M" });
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.sync();
    await mallory.prepareRoom(ROOM, joined("@mallory:x", "@bob:x"));
    // Mallory hands Bob a session as belonging to another room, then uses it in ROOM.
    const session = OutboundGroupSession.create();
    const roomKey = {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: "!other:x",
      session_id: session.sessionId,
      session_key: session.sessionKey(),
    };
    const { request } = await mallory.machine.encryptToDevice(
      "m.room_key",
      [{ userId: "@bob:x", deviceId: "B" }],
      roomKey,
    );
    assert.ok(request);
    await mallory.send(request);
    await bob.sync();
    const ciphertext = session.encrypt(
      JSON.stringify({ type: "m.room.message", content: { body: "x" }, room_id: ROOM }),
    );
    const event = {
      event_id: "$moved",
      sender: "@mallory:x",
      type: "m.room.encrypted",
      content: {
        algorithm: "m.megolm.v1.aes-sha2",
        ciphertext,
        session_id: session.sessionId,
        device_id: "M",
      },
    };
    await assert.rejects(bob.machine.decryptRoomEvent(event, "!other:x"), failsWith("ROOM_MISMATCH"));
  });

  it("rejects tampered ciphertext and malformed events with typed reasons", async () => {
    const { alice, bob } = await setup();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "intact");
    await bob.sync();
    const content = event.content as Record<string, string>;
    const ct = content.ciphertext ?? "";
    const flipped = ct.slice(0, 20) + (ct[20] === "A" ? "B" : "A") + ct.slice(21);
    await assert.rejects(
      bob.machine.decryptRoomEvent({ ...event, content: { ...content, ciphertext: flipped } }, ROOM),
      failsWith("BAD_SIGNATURE"),
    );
    await assert.rejects(
      bob.machine.decryptRoomEvent({ ...event, content: { nope: 1 } }, ROOM),
      failsWith("MALFORMED_EVENT"),
    );
    await assert.rejects(
      bob.machine.decryptRoomEvent({ ...event, content: { ...content, algorithm: "m.other" } }, ROOM),
      failsWith("UNSUPPORTED_ALGORITHM"),
    );
  });

  it("says the key was withheld from a blacklisted device", async () => {
    const { alice, bob } = await setup();
    await alice.machine.updateTrackedUsers(["@bob:x"]);
    await alice.flush();
    await alice.machine.setDeviceTrust("@bob:x", "B", "blacklisted");
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "secret");
    await bob.sync();
    await assert.rejects(
      bob.machine.decryptRoomEvent(event, ROOM),
      (e) => e instanceof DecryptionError && e.code === "WITHHELD" && e.withheldCode === "m.blacklisted",
    );
  });

  it("is not confused by another user's device listing the sender's Curve25519 key", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    // Mallory publishes a validly self-signed device that claims Alice's Curve25519 key.
    const mallory = Account.create();
    hs.forgeDeviceKeys(
      "@mallory:x",
      "M",
      signWithAccount(mallory, "@mallory:x", "M", {
        user_id: "@mallory:x",
        device_id: "M",
        algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        keys: {
          "curve25519:M": alice.machine.identityKeys.curve25519,
          "ed25519:M": mallory.identityKeys.ed25519,
        },
      }),
    );
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.sync();
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.sync();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "really Alice");
    const synced = await bob.sync();
    assert.deepEqual(synced.failures, []);
    const decrypted = await bob.machine.decryptRoomEvent(event, ROOM);
    assert.equal(decrypted.content.body, "really Alice");
    assert.equal(decrypted.senderDevice, "A");
    assert.equal(decrypted.trust, "unverified");
  });

  it("looks an event's sender key up among the sender's own devices only (no device_id, restarts)", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    // Mallory's validly self-signed device squats Alice's Curve25519 key.
    const mallory = Account.create();
    hs.forgeDeviceKeys(
      "@mallory:x",
      "M",
      signWithAccount(mallory, "@mallory:x", "M", {
        user_id: "@mallory:x",
        device_id: "M",
        algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        keys: {
          "curve25519:M": alice.machine.identityKeys.curve25519,
          "ed25519:M": mallory.identityKeys.ed25519,
        },
      }),
    );
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.sync();
    await bob.machine.updateTrackedUsers(["@alice:x"]);
    await bob.sync();
    const sent = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "no device id");
    assert.deepEqual((await bob.sync()).failures, []);
    const { device_id: _omitted, ...content } = sent.content as Record<string, unknown>;
    const event = { ...sent, content };
    for (let round = 0; round < 2; round++) {
      const decrypted = await bob.machine.decryptRoomEvent(event, ROOM);
      assert.equal(decrypted.content.body, "no device id");
      assert.equal(decrypted.senderDevice, "A");
      assert.equal(decrypted.trust, "unverified");
      await bob.restart();
    }
  });

  it("refuses a ciphertext larger than any event before decrypting it; a large real event is fine", async () => {
    const { alice, bob } = await setup();
    const big = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "x".repeat(40_000));
    await bob.sync();
    assert.equal(String((await bob.machine.decryptRoomEvent(big, ROOM)).content.body).length, 40_000);
    const content = big.content as Record<string, string>;
    for (const size of [MAX_ROOM_EVENT_CIPHERTEXT_BYTES + 1, 50 * 1024 * 1024]) {
      const huge = {
        ...big,
        event_id: `$huge${size}`,
        content: { ...content, ciphertext: "A".repeat(size) },
      };
      await assert.rejects(bob.machine.decryptRoomEvent(huge, ROOM), failsWith("TOO_LARGE"));
    }
    assert.equal((await bob.machine.decryptRoomEvent(big, ROOM)).messageIndex, 0);
  });

  it("writes replay records in batches that survive a crash", async () => {
    const { alice, bob } = await setup();
    const members = joined("@alice:x", "@bob:x");
    const settings = { rotationPeriodMessages: REPLAY_FLUSH_BATCH + 10 };
    const events = [];
    for (let i = 0; i < REPLAY_FLUSH_BATCH; i++)
      events.push(await alice.sendMessage(ROOM, members, `m${i}`, settings));
    await bob.sync();
    for (const e of events) await bob.machine.decryptRoomEvent(e, ROOM);
    // Crash: the store goes away without the machine closing.
    await bob.store.close();
    bob.store = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B", data: bob.data });
    bob.machine = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store: bob.store });
    const first = events[0];
    assert.ok(first);
    await assert.rejects(
      bob.machine.decryptRoomEvent({ ...first, event_id: "$again" }, ROOM),
      failsWith("REPLAYED"),
    );
  });
});
