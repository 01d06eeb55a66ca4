/** Receiving room keys and withheld notices from people who may be lying. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { decodeBase64, encodeBase64 } from "../../crypto/primitives/index.ts";
import { DecryptionError, type DecryptionFailureCode } from "../errors.ts";
import { FakeHomeserver, joined, megolmEventIn, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_RIVAL_ROOM_KEYS } from "./inbound.ts";

const ROOM = "!room:x";

function failsWith(code: DecryptionFailureCode) {
  return (e: unknown): boolean => e instanceof DecryptionError && e.code === code;
}

async function trio() {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  const mallory = await TestClient.create(hs, { userId: "@mallory:x", deviceId: "M" });
  await bob.machine.updateTrackedUsers(["@alice:x", "@mallory:x"]);
  await bob.sync();
  for (const c of [alice, mallory]) {
    await c.machine.updateTrackedUsers(["@bob:x"]);
    await c.flush();
    const claim = await c.machine.getMissingSessions(["@bob:x"]);
    if (claim !== undefined) await c.send(claim);
  }
  return { hs, alice, bob, mallory };
}

/** `from` sends `content` as an Olm-encrypted to-device event of `type` to Bob. */
async function sendToBob(from: TestClient, type: string, content: Record<string, unknown>): Promise<void> {
  const { request } = await from.machine.encryptToDevice(
    type,
    [{ userId: "@bob:x", deviceId: "B" }],
    content,
  );
  assert.ok(request);
  await from.send(request);
}

function roomKey(session: OutboundGroupSession, roomId = ROOM): Record<string, unknown> {
  return {
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: roomId,
    session_id: session.sessionId,
    session_key: session.sessionKey(),
  };
}

const eventIn = (session: OutboundGroupSession, sender: string, deviceId: string, body: string) =>
  megolmEventIn(session, ROOM, sender, deviceId, body);

describe("inbound room keys under hostile input", () => {
  it("refuses a room key whose room ID is not well-formed Unicode; the store stays usable", async () => {
    const { alice, bob, mallory } = await trio();
    const poisoned = OutboundGroupSession.create();
    await sendToBob(mallory, "m.room_key", roomKey(poisoned, "!r\uD800:x"));
    const synced = await bob.sync();
    assert.deepEqual(synced.roomKeys, []);
    assert.equal(await bob.machine.roomKeyCount(), 0);
    // Genuine traffic still works, and export lists every key.
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "fine");
    await bob.sync();
    assert.equal((await bob.machine.decryptRoomEvent(event, ROOM)).content.body, "fine");
    const exported = await bob.machine.exportRoomKeys();
    assert.deepEqual(
      exported.map((k) => k.room_id),
      [ROOM],
    );
  });

  it("ignores a withheld notice from anyone but the session's sender, and still asks for the key", async () => {
    const { hs, alice, bob } = await trio();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "secret");
    hs.device("@bob:x", "B").inbox.length = 0; // Alice's key never reaches Bob
    const sessionId = (event.content as { session_id: string }).session_id;
    const notice = {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      session_id: sessionId,
      sender_key: alice.machine.identityKeys.curve25519,
      code: "m.unverified",
    };
    await bob.machine.receiveSyncChanges({
      toDevice: [{ type: "m.room_key.withheld", sender: "@mallory:x", content: notice }],
    });
    await assert.rejects(bob.machine.decryptRoomEvent(event, ROOM), failsWith("UNKNOWN_SESSION"));
    const asked = (await bob.machine.outgoingRequests()).some(
      (r) => r.type === "to_device" && r.eventType === "m.room_key_request",
    );
    assert.ok(asked, "the key is requested");
    // The sender's own notice is believed.
    await bob.machine.receiveSyncChanges({
      toDevice: [{ type: "m.room_key.withheld", sender: "@alice:x", content: notice }],
    });
    await assert.rejects(bob.machine.decryptRoomEvent(event, ROOM), failsWith("WITHHELD"));
  });

  it("a withheld notice after the event: the waiting event is handed back failing WITHHELD, and still decrypts if the key comes", async () => {
    const { hs, alice, bob } = await trio();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "late notice");
    const inbox = hs.device("@bob:x", "B").inbox;
    const roomKeyShare = inbox.splice(0); // held back: the key reaches Bob only at the end
    const first = await bob.machine.tryDecryptRoomEvent(event, ROOM);
    assert.ok(!first.ok && first.error.code === "UNKNOWN_SESSION");
    const sessionId = (event.content as { session_id: string }).session_id;
    const notice = (sender: string) => ({
      type: "m.room_key.withheld",
      sender,
      content: {
        algorithm: "m.megolm.v1.aes-sha2",
        room_id: ROOM,
        session_id: sessionId,
        code: "m.unverified",
      },
    });
    // Someone else's notice changes nothing.
    const forged = await bob.machine.receiveSyncChanges({ toDevice: [notice("@mallory:x")] });
    assert.deepEqual(forged.withheldEvents, []);
    const told = await bob.machine.receiveSyncChanges({ toDevice: [notice("@alice:x")] });
    assert.deepEqual(
      told.withheldEvents.map((w) => [w.roomId, w.event.event_id, w.error.code, w.error.withheldCode]),
      [[ROOM, event.event_id, "WITHHELD", "m.unverified"]],
    );
    // It keeps waiting: the key arriving after all decrypts it.
    inbox.push(...roomKeyShare);
    const synced = await bob.sync();
    assert.deepEqual(
      synced.redecrypted.map((d) => d.content.body),
      ["late notice"],
    );
  });

  it("keeps the creator's own share when another member re-shared the session first", async () => {
    const { alice, bob, mallory } = await trio();
    const session = OutboundGroupSession.create();
    const key = roomKey(session);
    // Mallory, who holds Alice's session, races Alice's own share to Bob.
    await sendToBob(mallory, "m.room_key", key);
    await sendToBob(alice, "m.room_key", key);
    const synced = await bob.sync();
    assert.equal(synced.failures.length, 0);
    const decrypted = await bob.machine.decryptRoomEvent(eventIn(session, "@alice:x", "A", "one"), ROOM);
    assert.equal(decrypted.content.body, "one");
    assert.equal(decrypted.senderDevice, "A");
    assert.equal(decrypted.senderCurve25519, alice.machine.identityKeys.curve25519);
    // Settled for good: later events too, also after a restart.
    await bob.restart();
    const later = await bob.machine.decryptRoomEvent(eventIn(session, "@alice:x", "A", "two"), ROOM);
    assert.equal(later.senderDevice, "A");
    // The other order: Alice first, Mallory's copy changes nothing.
    const other = OutboundGroupSession.create();
    await sendToBob(alice, "m.room_key", roomKey(other));
    await sendToBob(mallory, "m.room_key", roomKey(other));
    await bob.sync();
    assert.equal(
      (await bob.machine.decryptRoomEvent(eventIn(other, "@alice:x", "A", "three"), ROOM)).senderDevice,
      "A",
    );
  });

  it("holds at most MAX_RIVAL_ROOM_KEYS rival shares, the oldest dropped first", async () => {
    const { alice, bob, mallory } = await trio();
    const sessions = Array.from({ length: MAX_RIVAL_ROOM_KEYS + 5 }, () => OutboundGroupSession.create());
    // Mallory's copies first; Alice's own shares of the same sessions then wait as rivals.
    for (const s of sessions) await sendToBob(mallory, "m.room_key", roomKey(s));
    await bob.sync();
    for (const s of sessions) await sendToBob(alice, "m.room_key", roomKey(s));
    await bob.sync();
    const [oldest] = sessions;
    const newest = sessions[sessions.length - 1];
    assert.ok(oldest && newest);
    await assert.rejects(
      bob.machine.decryptRoomEvent(eventIn(oldest, "@alice:x", "A", "dropped rival"), ROOM),
      failsWith("MISMATCHED_SENDER"),
    );
    const kept = await bob.machine.decryptRoomEvent(eventIn(newest, "@alice:x", "A", "kept rival"), ROOM);
    assert.equal(kept.senderDevice, "A");
  });

  it("a direct share naming another creator than an imported copy wins once its events show it, keeping the lower first index", async () => {
    const { alice, bob, mallory } = await trio();
    const session = OutboundGroupSession.create();
    const atZero = InboundGroupSession.fromSessionKey(session.sessionKey()).exportAt(0);
    const early = eventIn(session, "@alice:x", "A", "early");
    // An export (from anywhere) that names Mallory as the creator, from index 0.
    const imported = await bob.machine.importRoomKeys([
      {
        algorithm: "m.megolm.v1.aes-sha2",
        room_id: ROOM,
        sender_key: mallory.machine.identityKeys.curve25519,
        session_id: session.sessionId,
        session_key: atZero,
        sender_claimed_keys: { ed25519: mallory.machine.identityKeys.ed25519 },
        forwarding_curve25519_key_chain: [],
      },
    ]);
    assert.equal(imported.imported, 1);
    // Alice's own share arrives later, from index 1.
    await sendToBob(alice, "m.room_key", roomKey(session));
    await bob.sync();
    const late = await bob.machine.decryptRoomEvent(eventIn(session, "@alice:x", "A", "late"), ROOM);
    assert.equal(late.senderCurve25519, alice.machine.identityKeys.curve25519);
    assert.equal(late.forwarded, false);
    // ... and the earlier message still decrypts (index 0 kept), attributed to Alice.
    const first = await bob.machine.decryptRoomEvent(early, ROOM);
    assert.equal(first.content.body, "early");
    assert.equal(first.senderDevice, "A");
  });
});

describe("m.room_key binding (who a session belongs to)", () => {
  it("a room key is taken only over Olm: plaintext m.room_key and m.forwarded_room_key store nothing", async () => {
    const { bob } = await trio();
    const session = OutboundGroupSession.create();
    const key = roomKey(session);
    const synced = await bob.machine.receiveSyncChanges({
      toDevice: [
        { type: "m.room_key", sender: "@alice:x", content: key },
        {
          type: "m.forwarded_room_key",
          sender: "@bob:x",
          content: {
            ...key,
            session_key: InboundGroupSession.fromSessionKey(session.sessionKey()).exportAt(0),
            sender_key: "AAAA",
            sender_claimed_ed25519_key: "AAAA",
            forwarding_curve25519_key_chain: [],
          },
        },
      ],
    });
    assert.deepEqual(synced.roomKeys, []);
    assert.equal(await bob.machine.roomKeyCount(), 0);
  });

  it("the session is bound to the Olm sender's keys, not to keys its content names", async () => {
    const { alice, bob, mallory } = await trio();
    const session = OutboundGroupSession.create();
    // Mallory's share claims Alice's keys in fields a room key does not have.
    await sendToBob(mallory, "m.room_key", {
      ...roomKey(session),
      sender_key: alice.machine.identityKeys.curve25519,
      sender_claimed_ed25519_key: alice.machine.identityKeys.ed25519,
      sender_claimed_keys: { ed25519: alice.machine.identityKeys.ed25519 },
    });
    assert.equal((await bob.sync()).roomKeys.length, 1);
    await assert.rejects(
      bob.machine.decryptRoomEvent(eventIn(session, "@alice:x", "A", "spoofed"), ROOM),
      failsWith("MISMATCHED_SENDER"),
    );
    const own = await bob.machine.decryptRoomEvent(eventIn(session, "@mallory:x", "M", "mine"), ROOM);
    assert.equal(own.senderCurve25519, mallory.machine.identityKeys.curve25519);
    assert.equal(own.senderDevice, "M");
  });

  it("refuses a room key whose session_id is not the ID of its session key", async () => {
    const { alice, bob } = await trio();
    const real = OutboundGroupSession.create();
    const other = OutboundGroupSession.create();
    await sendToBob(alice, "m.room_key", { ...roomKey(other), session_id: real.sessionId });
    const synced = await bob.sync();
    assert.deepEqual(synced.failures, []);
    assert.deepEqual(synced.roomKeys, []);
    assert.equal(await bob.machine.roomKeyCount(), 0);
  });

  it("a copy whose ratchet is not connected to ours (forged under a real session ID) changes nothing", async () => {
    const { alice, bob, mallory } = await trio();
    const session = OutboundGroupSession.create();
    // An export under Alice's session ID from index 0, but with made-up ratchet bytes.
    const bytes = decodeBase64(InboundGroupSession.fromSessionKey(session.sessionKey()).exportAt(0));
    const early = eventIn(session, "@alice:x", "A", "early");
    await sendToBob(alice, "m.room_key", roomKey(session));
    await bob.sync();
    for (let i = 5; i < 5 + 128; i++) bytes[i] = (bytes[i] ?? 0) ^ 0x5a;
    const forged = {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: ROOM,
      sender_key: mallory.machine.identityKeys.curve25519,
      session_id: session.sessionId,
      session_key: encodeBase64(bytes).replace(/=+$/, ""),
      sender_claimed_keys: { ed25519: mallory.machine.identityKeys.ed25519 },
      forwarding_curve25519_key_chain: [],
    };
    assert.equal((await bob.machine.importRoomKeys([forged])).imported, 0);
    const later = await bob.machine.decryptRoomEvent(eventIn(session, "@alice:x", "A", "later"), ROOM);
    assert.equal(later.content.body, "later");
    assert.equal(later.forwarded, false);
    assert.equal(later.senderCurve25519, alice.machine.identityKeys.curve25519);
    await assert.rejects(bob.machine.decryptRoomEvent(early, ROOM), failsWith("UNKNOWN_INDEX"));
  });
});

describe("m.room_key.withheld cannot hide real keys", () => {
  const notice = (sessionId: string, extra: Record<string, unknown> = {}) => ({
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: ROOM,
    session_id: sessionId,
    code: "m.unverified",
    ...extra,
  });

  it("a notice for a session we hold is dropped, even from its sender", async () => {
    const { alice, bob } = await trio();
    const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "held");
    await bob.sync();
    const sessionId = (event.content as { session_id: string }).session_id;
    const synced = await bob.machine.receiveSyncChanges({
      toDevice: [{ type: "m.room_key.withheld", sender: "@alice:x", content: notice(sessionId) }],
    });
    assert.deepEqual(synced.withheldSessions, []);
    assert.equal((await bob.machine.decryptRoomEvent(event, ROOM)).content.body, "held");
  });

  it("a notice naming a curve key none of its sender's devices has is dropped", async () => {
    const { bob, mallory } = await trio();
    const session = OutboundGroupSession.create();
    const synced = await bob.machine.receiveSyncChanges({
      toDevice: [
        {
          type: "m.room_key.withheld",
          sender: "@alice:x",
          content: notice(session.sessionId, { sender_key: mallory.machine.identityKeys.curve25519 }),
        },
      ],
    });
    assert.deepEqual(synced.withheldSessions, []);
  });

  it("the sender's other device cannot say a session of another of their devices was withheld", async () => {
    const { hs, alice, bob } = await trio();
    const alice2 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A2" });
    await bob.machine.receiveKeysChanges(["@alice:x"], []);
    await bob.flush();
    await alice2.machine.updateTrackedUsers(["@bob:x"]);
    await alice2.flush();
    const claim = await alice2.machine.getMissingSessions(["@bob:x"]);
    if (claim !== undefined) await alice2.send(claim);
    const session = OutboundGroupSession.create(); // A's session, whose key Bob lacks
    await sendToBob(alice2, "m.room_key.withheld", notice(session.sessionId));
    const synced = await bob.sync();
    assert.equal(synced.withheldSessions.length, 1, "recorded, with A2's key");
    // The event names device A (and, in the deprecated field, A's key): A2's notice is not A's.
    const named = eventIn(session, "@alice:x", "A", "by device");
    await assert.rejects(bob.machine.decryptRoomEvent(named, ROOM), failsWith("UNKNOWN_SESSION"));
    const keyed = eventIn(session, "@alice:x", "A", "by key");
    const content = { ...keyed.content, sender_key: alice.machine.identityKeys.curve25519 };
    const { device_id: _none, ...withoutDevice } = content;
    await assert.rejects(
      bob.machine.decryptRoomEvent({ ...keyed, content: withoutDevice }, ROOM),
      failsWith("UNKNOWN_SESSION"),
    );
  });
});
