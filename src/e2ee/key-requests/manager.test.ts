import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";

async function setup(verifyEachOther: boolean) {
  const hs = new FakeHomeserver();
  const a1 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A1" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await a1.sync();
  const event = await bob.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "before A2 existed");
  await a1.sync();
  const a2 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A2" });
  await a1.sync();
  await a2.machine.updateTrackedUsers(["@bob:x"]);
  await a2.sync();
  if (verifyEachOther) {
    await a1.machine.setDeviceTrust("@alice:x", "A2", "verified");
    await a2.machine.setDeviceTrust("@alice:x", "A1", "verified");
  }
  return { hs, a1, a2, bob, event };
}

describe("key requests between own devices", () => {
  it("a new device asks, a verified own device forwards, pending events decrypt", async () => {
    const { hs, a1, a2, event } = await setup(true);
    await assert.rejects(a2.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
    await a2.flush();
    assert.ok(hs.sentToDevice.some((m) => m.eventType === "m.room_key_request" && m.to === "@alice:x|A1"));
    await a1.sync(); // answers (claiming an Olm session with A2 first)
    const synced = await a2.sync();
    assert.equal(synced.redecrypted.length, 1);
    const decrypted = synced.redecrypted[0];
    assert.equal(decrypted?.content.body, "before A2 existed");
    assert.equal(decrypted?.forwarded, true);
    assert.equal(decrypted?.trust, "unverified", "a forwarded key cannot prove who created it");
    assert.equal(decrypted?.senderDevice, "B");
    const cancellation = hs.sentToDevice.find(
      (m) => m.eventType === "m.room_key_request" && m.content.action === "request_cancellation",
    );
    assert.ok(cancellation, "the request is cancelled once the key arrived");
  });

  it("an unverified own device gets no keys, and unrequested forwards are ignored", async () => {
    const { hs, a1, a2, event } = await setup(false);
    await assert.rejects(a2.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
    await a2.flush();
    await a1.sync();
    assert.ok(
      !hs.sentToDevice.some(
        (m) => m.from === "@alice:x" && m.to === "@alice:x|A2" && m.eventType === "m.room.encrypted",
      ),
    );
    await a2.sync();
    assert.equal(a2.machine.pendingEventCount, 1);
  });

  it("a forward from a verified own device we did not ask is ignored", async () => {
    const { a1, a2 } = await setup(true);
    // A1 pushes the key unasked, over an Olm session it sets up with A2.
    const claim = await a1.machine.getMissingSessions(["@alice:x"]);
    assert.ok(claim);
    await a1.send(claim);
    const session = OutboundGroupSession.create();
    const exported = InboundGroupSession.fromSessionKey(session.sessionKey()).exportAt(0);
    const { request } = await a1.machine.encryptToDevice(
      "m.forwarded_room_key",
      [{ userId: "@alice:x", deviceId: "A2" }],
      {
        algorithm: "m.megolm.v1.aes-sha2",
        room_id: ROOM,
        session_id: session.sessionId,
        session_key: exported,
        sender_key: a1.machine.identityKeys.curve25519,
        sender_claimed_ed25519_key: a1.machine.identityKeys.ed25519,
        forwarding_curve25519_key_chain: [],
      },
    );
    assert.ok(request);
    await a1.send(request);
    const synced = await a2.sync();
    assert.equal(synced.roomKeys.length, 0);
  });

  it("an unverified own device's request is held and reported, then answered once it is verified", async () => {
    const { hs, a1, a2, event } = await setup(false);
    await assert.rejects(a2.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
    await a2.flush();
    const seen = await a1.sync();
    assert.equal(seen.heldKeyRequests.length, 1);
    assert.equal(seen.heldKeyRequests[0]?.deviceId, "A2");
    assert.equal(seen.heldKeyRequests[0]?.roomId, ROOM);
    assert.deepEqual(a1.machine.heldKeyRequests(), seen.heldKeyRequests);
    const toA2 = () =>
      hs.sentToDevice.filter((m) => m.to === "@alice:x|A2" && m.eventType === "m.room.encrypted").length;
    const before = toA2();
    await a1.flush();
    assert.equal(toA2(), before, "nothing is forwarded before the user verifies A2");

    await a1.machine.setDeviceTrust("@alice:x", "A2", "verified");
    assert.deepEqual(a1.machine.heldKeyRequests(), []);
    await a1.flush(); // claims an Olm session with A2, then forwards
    assert.ok(toA2() > before, "the held request was answered");
    await a2.machine.setDeviceTrust("@alice:x", "A1", "verified");
    const synced = await a2.sync();
    assert.equal(synced.redecrypted[0]?.content.body, "before A2 existed");
  });

  it("blacklisting the device drops its held requests, and a cancellation withdraws one", async () => {
    const first = await setup(false);
    await assert.rejects(first.a2.machine.decryptRoomEvent(first.event, ROOM), { code: "UNKNOWN_SESSION" });
    await first.a2.flush();
    await first.a1.sync();
    assert.equal(first.a1.machine.heldKeyRequests().length, 1);
    await first.a1.machine.setDeviceTrust("@alice:x", "A2", "blacklisted");
    assert.deepEqual(first.a1.machine.heldKeyRequests(), []);
    await first.a1.machine.setDeviceTrust("@alice:x", "A2", "verified");
    await first.a1.flush();
    assert.ok(
      !first.hs.sentToDevice.some((m) => m.to === "@alice:x|A2" && m.eventType === "m.room.encrypted"),
      "a dropped request is not answered by a later verification",
    );

    const second = await setup(false);
    await assert.rejects(second.a2.machine.decryptRoomEvent(second.event, ROOM), { code: "UNKNOWN_SESSION" });
    await second.a2.flush();
    await second.a1.sync();
    assert.equal(second.a1.machine.heldKeyRequests().length, 1);
    // A2 gets the key another way (an import): it cancels its request, and A1 lets go of it.
    const keys = await second.a1.machine.exportRoomKeys([ROOM]);
    await second.a2.machine.importRoomKeys(keys);
    await second.a2.flush();
    await second.a1.sync();
    assert.deepEqual(second.a1.machine.heldKeyRequests(), []);
  });

  it("requests for keys we do not hold are not held", async () => {
    const { a1, a2 } = await setup(false);
    const stranger = OutboundGroupSession.create();
    await assert.rejects(
      a2.machine.decryptRoomEvent(
        {
          event_id: "$x",
          sender: "@bob:x",
          type: "m.room.encrypted",
          content: {
            algorithm: "m.megolm.v1.aes-sha2",
            ciphertext: stranger.encrypt("{}"),
            session_id: stranger.sessionId,
            device_id: "B",
          },
        },
        ROOM,
      ),
      { code: "UNKNOWN_SESSION" },
    );
    await a2.flush();
    const seen = await a1.sync();
    assert.deepEqual(seen.heldKeyRequests, []);
  });
});
