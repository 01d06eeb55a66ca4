import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryCryptoStore } from "../store/index.ts";
import { DecryptionError } from "./errors.ts";
import { OlmMachine } from "./machine.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";

const ROOM = "!room:example.org";

async function pair(): Promise<{ hs: FakeHomeserver; alice: TestClient; bob: TestClient }> {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:example.org", deviceId: "ALICE1" });
  const bob = await TestClient.create(hs, { userId: "@bob:example.org", deviceId: "BOB1" });
  return { hs, alice, bob };
}

describe("OlmMachine: two devices", () => {
  it("uploads device keys, one-time keys and a fallback key at first login", async () => {
    const { hs, alice } = await pair();
    const d = hs.device(alice.userId, alice.deviceId);
    assert.equal(d.keys?.user_id, alice.userId);
    assert.equal(d.keys?.keys[`curve25519:${alice.deviceId}`], alice.machine.identityKeys.curve25519);
    assert.ok(d.fallback !== undefined);
    // The first upload's response reports the count, and the machine tops it up to the target.
    assert.equal(d.oneTimeKeys.size, 50);
    await alice.sync();
    assert.equal(d.oneTimeKeys.size, 50);
    assert.deepEqual(await alice.machine.outgoingRequests(), []);
  });

  it("Alice and Bob exchange encrypted messages both ways", async () => {
    const { alice, bob } = await pair();
    await alice.sync();
    await bob.sync();
    const members = joined(alice.userId, bob.userId);
    const event = await alice.sendMessage(ROOM, members, "hello Bob");
    const synced = await bob.sync();
    assert.equal(synced.roomKeys.length, 1);
    assert.equal(synced.failures.length, 0);
    const roomKey = synced.toDevice.find((e) => e.type === "m.room_key");
    assert.ok(roomKey);
    assert.equal(roomKey.content.session_key, undefined, "the session key is not handed to the app");
    const decrypted = await bob.machine.decryptRoomEvent(event, ROOM);
    assert.equal(decrypted.content.body, "hello Bob");
    assert.equal(decrypted.sender, alice.userId);
    assert.equal(decrypted.senderDevice, alice.deviceId);
    assert.equal(decrypted.trust, "unverified");

    await bob.machine.setDeviceTrust(alice.userId, alice.deviceId, "verified");
    const again = await bob.machine.decryptRoomEvent(event, ROOM);
    assert.equal(again.trust, "verified");

    const reply = await bob.sendMessage(ROOM, members, "hi Alice");
    await alice.sync();
    assert.equal((await alice.machine.decryptRoomEvent(reply, ROOM)).content.body, "hi Alice");
    // Alice reads her own message too.
    assert.equal((await alice.machine.decryptRoomEvent(event, ROOM)).content.body, "hello Bob");
  });

  it("shares the room key only once per device", async () => {
    const { hs, alice, bob } = await pair();
    await bob.sync();
    const members = joined(alice.userId, bob.userId);
    await alice.sendMessage(ROOM, members, "one");
    const before = hs.sentToDevice.filter((m) => m.eventType === "m.room.encrypted").length;
    await alice.sendMessage(ROOM, members, "two");
    const after = hs.sentToDevice.filter((m) => m.eventType === "m.room.encrypted").length;
    assert.equal(after, before);
    await bob.sync();
  });

  it("survives a restart on the same store", async () => {
    const { alice, bob } = await pair();
    await bob.sync();
    const members = joined(alice.userId, bob.userId);
    const first = await alice.sendMessage(ROOM, members, "before");
    await bob.sync();
    await bob.restart();
    await alice.restart();
    assert.equal((await bob.machine.decryptRoomEvent(first, ROOM)).content.body, "before");
    const second = await alice.sendMessage(ROOM, members, "after");
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(second, ROOM)).content.body, "after");
  });

  it("reports an unknown session and decrypts the event once the key arrives", async () => {
    const { alice, bob } = await pair();
    await bob.sync();
    const event = await alice.sendMessage(ROOM, joined(alice.userId, bob.userId), "late key");
    await assert.rejects(
      bob.machine.decryptRoomEvent(event, ROOM),
      (e) => e instanceof DecryptionError && e.code === "UNKNOWN_SESSION",
    );
    assert.equal(bob.machine.pendingEventCount, 1);
    const synced = await bob.sync();
    assert.equal(synced.redecrypted.length, 1);
    assert.equal(synced.redecrypted[0]?.content.body, "late key");
    // The event comes back as it was handed in: the client re-emits it whole from here.
    assert.equal(synced.redecrypted[0]?.encrypted, event);
    assert.equal(bob.machine.pendingEventCount, 0);
  });

  it("returns decryption failures as values, and keeps only events whose key may come", async () => {
    const { alice, bob } = await pair();
    await bob.sync();
    const event = await alice.sendMessage(ROOM, joined(alice.userId, bob.userId), "value");
    const missing = await bob.machine.tryDecryptRoomEvent(event, ROOM);
    assert.equal(missing.ok, false);
    assert.equal(missing.ok ? undefined : missing.error.code, "UNKNOWN_SESSION");
    assert.equal(bob.machine.pendingEventCount, 1);
    const broken = await bob.machine.tryDecryptRoomEvent(
      { ...event, event_id: "$broken", content: {} },
      ROOM,
    );
    assert.equal(broken.ok ? undefined : broken.error.code, "MALFORMED_EVENT");
    assert.equal(bob.machine.pendingEventCount, 1);
    await bob.sync();
    const now = await bob.machine.tryDecryptRoomEvent(event, ROOM);
    assert.equal(now.ok ? now.event.content.body : undefined, "value");
  });
});

describe("OlmMachine: steps", () => {
  it("never interleave: a step waits for the one before it to finish saving, and close waits for all", async () => {
    const store = await MemoryCryptoStore.open({ userId: "@s:example.org", deviceId: "S" });
    const machine = await OlmMachine.open({ userId: "@s:example.org", deviceId: "S", store });
    const log: string[] = [];
    let release: () => void = () => {};
    const save = store.saveChanges.bind(store);
    store.saveChanges = async (changes) => {
      log.push("save begins");
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      await save(changes);
      log.push("save ends");
    };
    // Two steps that both save (tracking new users), started together.
    const first = machine.updateTrackedUsers(["@a:example.org"]).then(() => log.push("first done"));
    const second = machine.updateTrackedUsers(["@b:example.org"]).then(() => log.push("second done"));
    const closed = machine.close().then(() => log.push("closed"));
    while (!log.includes("closed")) {
      await new Promise((r) => setImmediate(r));
      release();
    }
    await Promise.all([first, second, closed]);
    assert.ok(log.filter((l) => l === "save begins").length >= 2, "both steps saved");
    const saves = log.filter((l) => l.startsWith("save"));
    for (let i = 0; i < saves.length; i += 2)
      assert.deepEqual(saves.slice(i, i + 2), ["save begins", "save ends"]);
    assert.ok(log.indexOf("first done") < log.indexOf("second done"));
    assert.equal(log.at(-1), "closed");
    await assert.rejects(machine.updateTrackedUsers(["@c:example.org"]), { code: "CLOSED" });
  });
});
