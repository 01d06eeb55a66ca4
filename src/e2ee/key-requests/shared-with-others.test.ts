/**
 * Another user's key request, answered as matrix-rust-sdk answers it: only for a room key this
 * device created (its current outbound session in the room) and gave that very device (same user,
 * device ID and identity keys), from the first message index the device was given (never
 * earlier), and only while a share would still give it the key (not blacklisted, the room's
 * `shareWith` met). Everything else gets no reply.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, MegolmError } from "../../crypto/megolm/index.ts";
import { Account, Session } from "../../crypto/olm/index.ts";
import { utf8Decode } from "../../crypto/primitives/index.ts";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { MEGOLM_ALGORITHM } from "../devices/device.ts";
import { MAX_REPLACED_DEVICES } from "../devices/replaced.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_QUEUED_REPLIES } from "../to-device-queue.ts";
import { KEY_ANSWER_WINDOW_MS, MAX_KEY_ANSWERS_PER_SESSION } from "./answer-rate.ts";

const ROOM = "!room:x";
const MEMBERS = joined("@alice:x", "@bob:x");

const sessionOf = (e: EncryptedRoomEvent): string => (e.content as { session_id: string }).session_id;
const ciphertextOf = (e: EncryptedRoomEvent): string => (e.content as { ciphertext: string }).ciphertext;

/**
 * Alice's room key went to Bob's B1 at index 0 and to his new device B2 at index 1; B2 never got
 * the to-device message carrying it (lost). A clock each test can move.
 */
async function setup() {
  const clock = { t: 1_700_000_000_000 };
  const now = () => clock.t;
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A", now });
  const b1 = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B1", now });
  await b1.sync();
  const m0 = await alice.sendMessage(ROOM, MEMBERS, "before B2");
  clock.t += 1000;
  const b2 = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B2", now });
  await alice.sync(); // Bob's device list changed: B2 is queried
  const m1 = await alice.sendMessage(ROOM, MEMBERS, "after B2");
  assert.equal(sessionOf(m1), sessionOf(m0), "the same room key, given to B2 at index 1");
  hs.device("@bob:x", "B2").inbox.length = 0; // lost on the way
  return { clock, hs, alice, b1, b2, m0, m1 };
}

/** `m.room_key_request` from `requester` for `sessionId`, as a to-device event in a sync. */
function requestFrom(requester: TestClient, sessionId: string, requestId = "req1", roomId = ROOM) {
  return {
    type: "m.room_key_request",
    sender: requester.userId,
    content: {
      action: "request",
      request_id: requestId,
      requesting_device_id: requester.deviceId,
      body: { algorithm: MEGOLM_ALGORITHM, room_id: roomId, session_id: sessionId },
    },
  };
}

/** Alice receives the requests in a sync and sends whatever she queues. */
async function aliceReceives(alice: TestClient, ...events: Record<string, unknown>[]): Promise<void> {
  await alice.machine.receiveSyncChanges({ toDevice: events });
  await alice.flush();
}

/** The Olm messages Alice sent `to` (its curve key) since `from` in the server's log. */
function olmFromAlice(hs: FakeHomeserver, to: TestClient, from = 0) {
  return hs.sentToDevice
    .slice(from)
    .filter(
      (m) =>
        m.from === "@alice:x" && m.to === `${to.userId}|${to.deviceId}` && m.eventType === "m.room.encrypted",
    );
}

/**
 * The Olm payload of an `m.room.encrypted` to-device content for `to`, decrypted with copies of its
 * stored sessions and account (so `to` itself is left as it was).
 */
async function openOlm(to: TestClient, from: TestClient, content: Record<string, unknown>) {
  const theirs = from.machine.identityKeys.curve25519;
  const ciphertext = content.ciphertext as Record<string, { type: 0 | 1; body: string }>;
  const message = ciphertext[to.machine.identityKeys.curve25519];
  assert.ok(message, "encrypted for this device");
  for (const record of await to.store.getOlmSessions(theirs)) {
    try {
      return JSON.parse(utf8Decode(Session.fromPickle(record.pickle).decrypt(message)));
    } catch {
      // another session
    }
  }
  const account = await to.store.loadAccount();
  assert.ok(account);
  const { plaintext } = Account.fromPickle(account.pickle).createInboundSession(theirs, message);
  return JSON.parse(utf8Decode(plaintext)) as { type: string; content: Record<string, unknown> };
}

/** The forwarded room keys Alice sent `to` since `from`, opened. */
async function forwardsTo(hs: FakeHomeserver, alice: TestClient, to: TestClient, from = 0) {
  const out: Record<string, unknown>[] = [];
  for (const m of olmFromAlice(hs, to, from)) {
    const payload = await openOlm(to, alice, m.content);
    if (payload.type === "m.forwarded_room_key") out.push(payload.content);
  }
  return out;
}

function decrypts(session: InboundGroupSession, event: EncryptedRoomEvent): boolean {
  try {
    session.decrypt(ciphertextOf(event));
    return true;
  } catch (e) {
    if (e instanceof MegolmError) return false;
    throw e;
  }
}

describe("another user's key request for a room key we gave their device", () => {
  it("is answered over Olm from the index the device was given, never earlier", async () => {
    const { hs, alice, b2, m0, m1 } = await setup();
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1)));
    const [forward, ...more] = await forwardsTo(hs, alice, b2);
    assert.ok(forward, "Alice forwarded the room key to B2");
    assert.deepEqual(more, []);
    assert.equal(forward.room_id, ROOM);
    assert.equal(forward.session_id, sessionOf(m1));
    assert.equal(forward.sender_key, alice.machine.identityKeys.curve25519);
    assert.equal(forward.sender_claimed_ed25519_key, alice.machine.identityKeys.ed25519);
    assert.deepEqual(forward.forwarding_curve25519_key_chain, []);
    const session = InboundGroupSession.fromExport(forward.session_key as string);
    assert.equal(session.sessionId, sessionOf(m1));
    assert.equal(session.firstKnownIndex, 1, "from the index B2 was given");
    assert.ok(decrypts(session, m1), "the message B2 missed decrypts");
    assert.equal(decrypts(session, m0), false, "the message before B2 joined does not");
  });

  it("gives a device that got the key at index 0 the whole session", async () => {
    const { hs, alice, b1, m0 } = await setup();
    const sent = hs.sentToDevice.length;
    await aliceReceives(alice, requestFrom(b1, sessionOf(m0)));
    const [forward] = await forwardsTo(hs, alice, b1, sent);
    assert.ok(forward);
    const session = InboundGroupSession.fromExport(forward.session_key as string);
    assert.equal(session.firstKnownIndex, 0);
    assert.ok(decrypts(session, m0));
  });

  it("is answered once while its answer waits, whatever the request IDs", async () => {
    const { hs, alice, b2, m1 } = await setup();
    const requests = Array.from({ length: 20 }, (_, i) => requestFrom(b2, sessionOf(m1), `r${i}`));
    await alice.machine.receiveSyncChanges({ toDevice: requests });
    const queued = (await alice.machine.outgoingRequests()).filter(
      (r) => r.type === "to_device" && r.eventType === "m.room.encrypted",
    );
    assert.equal(queued.length, 1);
    assert.ok(queued.length < MAX_QUEUED_REPLIES);
    await alice.flush();
    assert.equal((await forwardsTo(hs, alice, b2)).length, 1);
    // Sent: a later request is answered again.
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1), "later"));
    assert.equal((await forwardsTo(hs, alice, b2)).length, 2);
  });

  it(`costs at most MAX_KEY_ANSWERS_PER_SESSION (${MAX_KEY_ANSWERS_PER_SESSION}) messages per window, however often the device asks`, async () => {
    const { clock, hs, alice, b1, b2, m0, m1 } = await setup();
    // Each request comes once the answer to the one before went out.
    for (let i = 0; i < MAX_KEY_ANSWERS_PER_SESSION + 5; i++) {
      await aliceReceives(alice, requestFrom(b2, sessionOf(m1), `r${i}`));
    }
    assert.equal((await forwardsTo(hs, alice, b2)).length, MAX_KEY_ANSWERS_PER_SESSION);
    // Another device is counted apart.
    await aliceReceives(alice, requestFrom(b1, sessionOf(m0), "b1"));
    assert.equal((await forwardsTo(hs, alice, b1)).length, 1);
    // The window over, the device is answered again.
    clock.t += KEY_ANSWER_WINDOW_MS;
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1), "next-window"));
    assert.equal((await forwardsTo(hs, alice, b2)).length, MAX_KEY_ANSWERS_PER_SESSION + 1);
  });

  it("waits for an Olm session with the device, and is judged again when it can go out", async () => {
    for (const blacklistMeanwhile of [false, true]) {
      const { hs, alice, b2, m1 } = await setup();
      // Alice lost her Olm sessions with B2 (say, a store restored from a copy).
      alice.data.olm.delete(b2.machine.identityKeys.curve25519);
      await alice.restart();
      await alice.machine.receiveSyncChanges({ toDevice: [requestFrom(b2, sessionOf(m1))] });
      const claims = (await alice.machine.outgoingRequests()).filter((r) => r.type === "keys_claim");
      assert.equal(claims.length, 1, "a session with B2 is claimed for the answer");
      if (blacklistMeanwhile) await alice.machine.setDeviceTrust("@bob:x", "B2", "blacklisted");
      await alice.flush();
      const forwards = await forwardsTo(hs, alice, b2);
      assert.equal(forwards.length, blacklistMeanwhile ? 0 : 1);
      if (!blacklistMeanwhile) {
        const session = InboundGroupSession.fromExport(forwards[0]?.session_key as string);
        assert.equal(session.firstKnownIndex, 1);
      }
    }
  });
});

describe("another user's key request that gets no reply", () => {
  it("from a device the key was never given", async () => {
    const { clock, hs, alice, m1 } = await setup();
    clock.t += 1000;
    const b3 = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B3", now: () => clock.t });
    await alice.sync(); // Alice knows B3, and has sent nothing since
    const sent = hs.sentToDevice.length;
    await aliceReceives(alice, requestFrom(b3, sessionOf(m1)));
    assert.deepEqual(olmFromAlice(hs, b3, sent), []);
    assert.equal(hs.sentToDevice.length, sent, "nothing at all was sent");
  });

  it("from a device whose identity keys are not those the key was given to", async () => {
    const { clock, hs, alice, b2, m1 } = await setup();
    // B2 logs out; a new device takes its ID (a new store, new identity keys).
    clock.t += 1000;
    hs.deleteDevice("@bob:x", "B2");
    await alice.sync();
    clock.t += 1000;
    const again = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B2", now: () => clock.t });
    await alice.sync();
    assert.equal(
      (await alice.machine.getDevice("@bob:x", "B2"))?.ed25519,
      again.machine.identityKeys.ed25519,
    );
    assert.notEqual(again.machine.identityKeys.curve25519, b2.machine.identityKeys.curve25519);
    const sent = hs.sentToDevice.length;
    await aliceReceives(alice, requestFrom(again, sessionOf(m1)));
    assert.equal(hs.sentToDevice.length, sent, "nothing was sent, nor a session claimed for it");
    assert.deepEqual(await alice.machine.outgoingRequests(), []);
  });

  it(`from a device whose ID was taken by a new device, once more than MAX_REPLACED_DEVICES (${MAX_REPLACED_DEVICES}) later replacements pushed its note out`, async () => {
    const { clock, hs, alice, m1 } = await setup();
    clock.t += 1000;
    hs.deleteDevice("@bob:x", "B2");
    await alice.sync();
    clock.t += 1000;
    const again = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B2", now: () => clock.t });
    await alice.sync(); // B2's ID taken by a new device: noted
    // A server deleting and listing devices again at will: later notes, up to the bound (made up
    // here, as the store would hold them), then one more real replacement pushes B2's note out.
    const key = "keyroom.replaced_devices.v1";
    const notes = alice.data.custom.get(key) as [string, string, number][];
    assert.deepEqual(
      notes.map(([u, d]) => [u, d]),
      [["@bob:x", "B2"]],
    );
    for (let i = 1; i < MAX_REPLACED_DEVICES; i++) notes.push(["@mallory:x", `M${i}`, clock.t + i]);
    await alice.restart();
    clock.t += MAX_REPLACED_DEVICES + 1000;
    hs.deleteDevice("@bob:x", "B1");
    await alice.sync();
    clock.t += 1000;
    await TestClient.create(hs, { userId: "@bob:x", deviceId: "B1", now: () => clock.t });
    await alice.sync();
    const kept = alice.data.custom.get(key) as [string, string, number][];
    assert.equal(kept.length, MAX_REPLACED_DEVICES);
    assert.ok(!kept.some(([u, d]) => u === "@bob:x" && d === "B2"), "B2's note was pushed out");
    const sent = hs.sentToDevice.length;
    await aliceReceives(alice, requestFrom(again, sessionOf(m1)));
    assert.deepEqual(olmFromAlice(hs, again, sent), [], "the new device under B2's ID gets nothing");
    // After a restart too (what was forgotten is remembered as forgotten).
    await alice.restart();
    await aliceReceives(alice, requestFrom(again, sessionOf(m1), "req2"));
    assert.deepEqual(olmFromAlice(hs, again, sent), []);
  });

  it("for a room key someone else created, though we hold it", async () => {
    const { hs, alice, b1 } = await setup();
    // Bob's own room key, which Alice holds: Bob's B1 (which holds it too) asks her for it.
    const fromBob = await b1.sendMessage(ROOM, MEMBERS, "bob's");
    await alice.sync();
    assert.equal((await alice.machine.decryptRoomEvent(fromBob, ROOM)).content.body, "bob's");
    const sent = hs.sentToDevice.length;
    await aliceReceives(alice, requestFrom(b1, sessionOf(fromBob)));
    assert.equal(hs.sentToDevice.length, sent);
  });

  it("for an earlier room key of ours, replaced since", async () => {
    const { hs, alice, b2, m1 } = await setup();
    await alice.machine.discardRoomKey(ROOM);
    const next = await alice.sendMessage(ROOM, MEMBERS, "new key");
    assert.notEqual(sessionOf(next), sessionOf(m1));
    const sent = hs.sentToDevice.length;
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1)));
    assert.deepEqual(await forwardsTo(hs, alice, b2, sent), []);
    // The control: the current key, which B2 got in full, is forwarded.
    await aliceReceives(alice, requestFrom(b2, sessionOf(next)));
    assert.equal((await forwardsTo(hs, alice, b2, sent)).length, 1);
  });

  it("from a device blacklisted since it was given the key", async () => {
    const { hs, alice, b2, m1 } = await setup();
    await alice.machine.setDeviceTrust("@bob:x", "B2", "blacklisted");
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1)));
    assert.deepEqual(await forwardsTo(hs, alice, b2), []);
    // The control: the same request once the device is no longer blacklisted.
    await alice.machine.setDeviceTrust("@bob:x", "B2", "unset");
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1), "req2"));
    assert.equal((await forwardsTo(hs, alice, b2)).length, 1);
  });

  it("from a device the room's shareWith now excludes", async () => {
    const { hs, alice, b2, m1 } = await setup();
    await alice.machine.setRoomSettings(ROOM, { shareWith: "verified" });
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1)));
    assert.deepEqual(await forwardsTo(hs, alice, b2), []);
    // The control: verified, it meets the room's rule.
    await alice.machine.setDeviceTrust("@bob:x", "B2", "verified");
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1), "req2"));
    assert.equal((await forwardsTo(hs, alice, b2)).length, 1);
  });

  it("from a device a share would stop at now (verifyDevices, its trust unset)", async () => {
    const { hs, alice, b2, m1 } = await setup();
    await alice.machine.setRoomSettings(ROOM, { verifyDevices: true });
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1)));
    assert.deepEqual(await forwardsTo(hs, alice, b2), []);
    // The control: once the user has seen the device (here: ignored it), it is answered.
    await alice.machine.setDeviceTrust("@bob:x", "B2", "ignored");
    await aliceReceives(alice, requestFrom(b2, sessionOf(m1), "req2"));
    assert.equal((await forwardsTo(hs, alice, b2)).length, 1);
  });

  it("naming a device of another user than the one who sent it", async () => {
    const { hs, alice, b2, m1 } = await setup();
    const carol = await TestClient.create(hs, { userId: "@carol:x", deviceId: "C" });
    // Carol's server sends a request naming Bob's device B2 (a device ID, not a user).
    const request = { ...requestFrom(b2, sessionOf(m1)), sender: carol.userId };
    await aliceReceives(alice, request);
    assert.deepEqual(await forwardsTo(hs, alice, b2), []);
  });

  it("for a room we never shared a key in, or with a malformed body", async () => {
    const { hs, alice, b2, m1 } = await setup();
    const sent = hs.sentToDevice.length;
    await aliceReceives(
      alice,
      requestFrom(b2, sessionOf(m1), "other-room", "!other:x"),
      {
        ...requestFrom(b2, sessionOf(m1), "no-body"),
        content: { action: "request", request_id: "x", requesting_device_id: "B2" },
      },
      { ...requestFrom(b2, sessionOf(m1), "junk"), content: { action: "request", request_id: 7 } },
    );
    assert.equal(hs.sentToDevice.length, sent);
  });
});
