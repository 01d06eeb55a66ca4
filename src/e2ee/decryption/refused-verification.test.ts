// Under `senderRequirement: "refuse"`, an in-room verification event (sent encrypted in a DM) from
// a device not cross-signed was refused like any message, so such a device could never be
// verified in a DM, though verifying is how it comes to be trusted (and the flow's MACs, not the
// sender's trust, authenticate it). The refusal stands, but it now carries the verification
// event for the flow; ordinary messages from the device are refused as before, carrying nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_LATE_VERIFICATION_EVENTS } from "./pending.ts";

const ALICE = "@alice:example.org";
const BOB = "@bob:example.org";
const ROOM = "!dm:example.org";

/** Bob's in-room verification request to Alice (the content of its `m.room.message`). */
const REQUEST = {
  msgtype: "m.key.verification.request",
  body: "Bob wants to verify",
  from_device: "BOB1",
  methods: ["m.sas.v1"],
  to: ALICE,
};

/** Alice (refusing) and Bob (not cross-signed) in a DM; `lateKey`: Alice has not synced Bob's room key yet. */
async function pair(options: { lateKey?: boolean } = {}) {
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, {
    userId: ALICE,
    deviceId: "ALICE1",
    senderRequirement: "refuse",
  });
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "BOB1" }); // not cross-signed
  await bob.prepareRoom(ROOM, joined(ALICE, BOB));
  if (options.lateKey !== true) await alice.sync(); // the room key
  const send = async (type: string, content: Record<string, unknown>) => ({
    event_id: hs.nextEventId(),
    sender: BOB,
    type: "m.room.encrypted",
    content: await bob.machine.encryptRoomEvent(ROOM, type, content),
  });
  // The session rotates every 100 messages: a new one shared (still not synced by Alice).
  const rotate = () => bob.prepareRoom(ROOM, joined(ALICE, BOB));
  return { alice, send, rotate };
}

describe("verification events from a sender the requirement refuses", () => {
  it("are refused, the refusal carrying them for the verification flow", async () => {
    const { alice, send } = await pair();
    const request = await send("m.room.message", REQUEST);
    const start = await send("m.key.verification.start", {
      from_device: "BOB1",
      method: "m.sas.v1",
      "m.relates_to": { rel_type: "m.reference", event_id: request.event_id },
    });
    const outcomes = await alice.machine.tryDecryptRoomEvents([
      { event: request, roomId: ROOM },
      { event: start, roomId: ROOM },
    ]);
    for (const o of outcomes) {
      assert.ok(!o.ok);
      assert.equal(o.error.code, "SENDER_NOT_CROSS_SIGNED");
      assert.equal(o.verificationEvent?.senderDevice, "BOB1");
      assert.equal(o.verificationEvent?.senderCrossSigned, false);
    }
    assert.equal(
      outcomes[0]?.ok === false && outcomes[0].verificationEvent?.content.msgtype,
      "m.key.verification.request",
    );
    assert.equal(
      outcomes[1]?.ok === false && outcomes[1].verificationEvent?.type,
      "m.key.verification.start",
    );
    // Not in the error: an application logging it must not log the event.
    assert.ok(outcomes.every((o) => !o.ok && !("event" in o.error)));
  });

  it("decrypted once their key came late, they are kept for the flow and handed out once (ordinary messages not)", async () => {
    const { alice, send } = await pair({ lateKey: true });
    const request = await send("m.room.message", REQUEST);
    const text = await send("m.room.message", { msgtype: "m.text", body: "hello" });
    const before = await alice.machine.tryDecryptRoomEvents([
      { event: request, roomId: ROOM },
      { event: text, roomId: ROOM },
    ]);
    assert.deepEqual(
      before.map((o) => !o.ok && o.error.code),
      ["UNKNOWN_SESSION", "UNKNOWN_SESSION"],
    );
    assert.deepEqual(alice.machine.takeLateVerificationEvents(), []);
    const result = await alice.sync(); // the room key
    assert.deepEqual(result.redecrypted, [], "refused: not decrypted for the application");
    const late = alice.machine.takeLateVerificationEvents();
    assert.equal(late.length, 1);
    assert.equal(late[0]?.content.msgtype, "m.key.verification.request");
    assert.equal(late[0]?.senderDevice, "BOB1");
    assert.equal((late[0]?.encrypted as { event_id?: string } | undefined)?.event_id, request.event_id);
    assert.deepEqual(alice.machine.takeLateVerificationEvents(), [], "handed out once");
  });

  it("at most MAX_LATE_VERIFICATION_EVENTS are kept until taken, the oldest dropped", async () => {
    const { alice, send, rotate } = await pair({ lateKey: true });
    const events = [];
    for (let i = 0; i <= MAX_LATE_VERIFICATION_EVENTS; i++) {
      if (i > 0 && i % 50 === 0) await rotate();
      events.push(
        await send("m.key.verification.cancel", {
          code: "m.user",
          reason: `${i}`,
          "m.relates_to": { rel_type: "m.reference", event_id: `$req${i}` },
        }),
      );
    }
    await alice.machine.tryDecryptRoomEvents(events.map((event) => ({ event, roomId: ROOM })));
    await alice.sync();
    const late = alice.machine.takeLateVerificationEvents();
    assert.equal(late.length, MAX_LATE_VERIFICATION_EVENTS);
    assert.equal(late[0]?.content.reason, "1", "the oldest was dropped");
  });

  it("ordinary messages are refused carrying nothing", async () => {
    const { alice, send } = await pair();
    const text = await send("m.room.message", { msgtype: "m.text", body: "hello" });
    const one = await alice.machine.tryDecryptRoomEvent(text, ROOM);
    assert.ok(!one.ok);
    assert.equal(one.error.code, "SENDER_NOT_CROSS_SIGNED");
    assert.equal(one.verificationEvent, undefined);
  });
});
