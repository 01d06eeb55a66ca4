/**
 * A member re-shared someone else's session to us before its creator did: the creator's events
 * read meanwhile fail `MISMATCHED_SENDER`, and are decrypted once the creator's own share arrives.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { megolmEventIn } from "../test-support/fake-homeserver.ts";
import { aliceMemberAndBob, ROOM, shareToBob } from "../test-support/reshare.ts";

describe("an event read while only a re-shared copy of its session was held", () => {
  it("is decrypted (redecrypted) when the creator's own share arrives", async () => {
    const { alice, bob, member: mallory } = await aliceMemberAndBob({ userId: "@mallory:x", deviceId: "M" });
    const session = OutboundGroupSession.create();
    // Mallory's copy of Alice's session reaches Bob first (the server held Alice's share back).
    await shareToBob(mallory, session);
    await bob.sync();
    const event = megolmEventIn(session, ROOM, "@alice:x", "A", "hello");
    const early = await bob.machine.tryDecryptRoomEvent(event, ROOM);
    assert.equal(early.ok ? "ok" : early.error.code, "MISMATCHED_SENDER");
    // Alice's own share arrives in the next sync: the event she sent reads now, as hers.
    await shareToBob(alice, session);
    const synced = await bob.sync();
    assert.deepEqual(
      synced.redecrypted.map((e) => [e.eventId, e.content.body, e.senderDevice]),
      [[event.event_id, "hello", "A"]],
    );
  });
});
