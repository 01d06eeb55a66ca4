// Verification events of refused senders are held from their decryption until their timeline
// event is emitted; anyone in a room can send many (and history pages decrypt events never
// emitted), so at most MAX_HELD_VERIFICATION_EVENTS are held, the oldest dropped first.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DecryptedRoomEvent } from "../../e2ee/index.ts";
import { MAX_HELD_VERIFICATION_EVENTS, RefusedVerificationEvents } from "./refused-verification.ts";

const event = (i: number) =>
  ({
    type: "m.key.verification.start",
    content: { from_device: "D", method: "m.sas.v1" },
    roomId: "!dm:hs",
    eventId: `$${i}`,
    senderDevice: "D",
  }) as unknown as DecryptedRoomEvent;

describe("refused senders' verification events held for the flow", () => {
  it("are handed out once, at most MAX_HELD_VERIFICATION_EVENTS held, the oldest dropped", () => {
    const held = new RefusedVerificationEvents();
    for (let i = 0; i <= MAX_HELD_VERIFICATION_EVENTS; i++) held.hold(event(i));
    assert.equal(held.take("!dm:hs", "$0"), undefined, "the oldest was dropped");
    const last = held.take("!dm:hs", `$${MAX_HELD_VERIFICATION_EVENTS}`);
    assert.deepEqual(last, {
      type: "m.key.verification.start",
      content: { from_device: "D", method: "m.sas.v1" },
      senderDeviceId: "D",
    });
    assert.equal(held.take("!dm:hs", `$${MAX_HELD_VERIFICATION_EVENTS}`), undefined, "taken once");
    assert.equal(held.take("!other:hs", "$1"), undefined, "another room's event of that ID is not it");
    assert.ok(held.take("!dm:hs", "$1") !== undefined);
  });
});
