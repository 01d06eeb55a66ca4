/**
 * Who may give us a forwarded key, and whose key requests we answer: the defences against key
 * forwarding attacks (Albrecht et al. 2022, "Practically-exploitable Cryptographic Vulnerabilities
 * in Matrix", §IV: a forwarded key from anyone but our own verified devices lets them inject a
 * session claiming any creator; answering anyone but our own verified devices leaks keys).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { RawOlmPeer } from "../test-support/raw-peer.ts";

const ROOM = "!room:x";

/** Alice's A1 holds Bob's room key; her new device A2 lacks it and has asked her devices for it. */
async function setup() {
  const hs = new FakeHomeserver();
  const a1 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A1" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await a1.sync();
  const event = await bob.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "before A2 existed");
  await a1.sync();
  const a2 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A2" });
  await a1.sync();
  await a2.machine.updateTrackedUsers(["@bob:x", "@alice:x"]);
  await a2.sync();
  await assert.rejects(a2.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
  await a2.flush(); // the m.room_key_request to Alice's devices
  return { hs, a1, a2, bob, event };
}

/** The forwarded-key content for the session of `event`, from `holder`'s copy. */
async function forwardOf(holder: TestClient): Promise<Record<string, unknown>> {
  const [key] = await holder.machine.exportRoomKeys([ROOM]);
  assert.ok(key);
  return {
    algorithm: key.algorithm,
    room_id: key.room_id,
    session_id: key.session_id,
    session_key: key.session_key,
    sender_key: key.sender_key,
    sender_claimed_ed25519_key: key.sender_claimed_keys.ed25519,
    forwarding_curve25519_key_chain: key.forwarding_curve25519_key_chain,
  };
}

async function forwardOverOlm(from: TestClient, to: TestClient, content: Record<string, unknown>) {
  await from.machine.updateTrackedUsers([to.userId]);
  await from.machine.receiveKeysChanges([to.userId], []); // the target's newest devices
  await from.flush();
  const claim = await from.machine.getMissingSessions([to.userId]);
  if (claim !== undefined) await from.send(claim);
  const { request } = await from.machine.encryptToDevice(
    "m.forwarded_room_key",
    [{ userId: to.userId, deviceId: to.deviceId }],
    content,
  );
  assert.ok(request, "an Olm session to the target exists");
  await from.send(request);
}

const encryptedTo = (hs: FakeHomeserver, to: string) =>
  hs.sentToDevice.filter((m) => m.to === to && m.eventType === "m.room.encrypted").length;

describe("forwarded keys from hostile or untrusted devices", () => {
  it("a forward we asked for, from an own device we did not verify, is ignored", async () => {
    const { a1, a2 } = await setup();
    // A1 trusts A2 and answers it; A2 has not verified A1.
    await a1.machine.setDeviceTrust("@alice:x", "A2", "verified");
    await a1.sync();
    await a1.flush();
    const synced = await a2.sync();
    assert.deepEqual(synced.roomKeys, []);
    assert.deepEqual(synced.redecrypted, []);
    assert.equal(a2.machine.pendingEventCount, 1);
    // The control: once A2 verified A1, the same answer is accepted.
    await a2.machine.setDeviceTrust("@alice:x", "A1", "verified");
    await forwardOverOlm(a1, a2, await forwardOf(a1));
    assert.equal((await a2.sync()).redecrypted.length, 1);
  });

  it("a forward we asked for, from our verified device, whose key is another session's, is ignored", async () => {
    const { a1, a2 } = await setup();
    await a2.machine.setDeviceTrust("@alice:x", "A1", "verified");
    // The requested session's ID over another session's key: stored, it would pass as Bob's session.
    const other = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    const genuine = await forwardOf(a1);
    await forwardOverOlm(a1, a2, { ...genuine, session_key: other.exportAtFirstKnownIndex() });
    const synced = await a2.sync();
    assert.deepEqual(synced.failures, []);
    assert.deepEqual(synced.roomKeys, []);
    assert.equal(a2.machine.pendingEventCount, 1);
    // The control: the request is still out, and the genuine forward is taken.
    await forwardOverOlm(a1, a2, genuine);
    assert.equal((await a2.sync()).redecrypted.length, 1);
  });

  it("a forward we asked for, from another user's device we verified, is ignored", async () => {
    const { a2, bob } = await setup();
    await a2.machine.setDeviceTrust("@bob:x", "B", "verified");
    // Bob holds the session (he made it) and answers A2's request himself.
    await forwardOverOlm(bob, a2, await forwardOf(bob));
    const synced = await a2.sync();
    assert.deepEqual(synced.failures, []);
    assert.deepEqual(synced.roomKeys, []);
    assert.equal(a2.machine.pendingEventCount, 1);
  });

  it("a forward we asked for, from an own device whose keys we do not know, is ignored", async () => {
    const { hs, a1, a2 } = await setup();
    // A device of Alice's that A2 never saw in her device list (or a forged one).
    const unknown = new RawOlmPeer("@alice:x", "AX");
    const toA2 = unknown.encrypt(hs, a2, unknown.payload(a2, "m.forwarded_room_key", await forwardOf(a1)));
    const synced = await a2.machine.receiveSyncChanges({ toDevice: [toA2] });
    assert.deepEqual(synced.failures, []);
    assert.deepEqual(synced.roomKeys, []);
    assert.equal(a2.machine.pendingEventCount, 1);
  });
});

describe("key requests we must not answer", () => {
  it("another user's request is neither answered nor held, even from a device we verified", async () => {
    const { hs, a1, bob } = await setup();
    await a1.machine.setDeviceTrust("@bob:x", "B", "verified");
    const [key] = await a1.machine.exportRoomKeys([ROOM]);
    assert.ok(key);
    const before = encryptedTo(hs, "@bob:x|B");
    const seen = await a1.machine.receiveSyncChanges({
      toDevice: [
        {
          type: "m.room_key_request",
          sender: bob.userId,
          content: {
            action: "request",
            request_id: "bobs",
            requesting_device_id: "B",
            body: { algorithm: key.algorithm, room_id: ROOM, session_id: key.session_id },
          },
        },
      ],
    });
    await a1.flush();
    assert.deepEqual(seen.heldKeyRequests, []);
    assert.equal(encryptedTo(hs, "@bob:x|B"), before, "nothing was forwarded to Bob");
  });

  it("a blacklisted own device's request is neither answered nor held", async () => {
    const { hs, a1 } = await setup();
    await a1.machine.setDeviceTrust("@alice:x", "A2", "blacklisted");
    const seen = await a1.sync();
    await a1.flush();
    assert.deepEqual(seen.heldKeyRequests, []);
    assert.deepEqual(a1.machine.heldKeyRequests(), []);
    assert.equal(encryptedTo(hs, "@alice:x|A2"), 0);
  });
});
