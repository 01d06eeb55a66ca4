/**
 * A member holding a session's key (every member does) re-shares it to us and posts a copy of
 * one of its creator's events under their own name: once an event decrypted under the creator's
 * claim, that copy must not hand the session over to them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { megolmEventIn } from "../test-support/fake-homeserver.ts";
import { aliceMemberAndBob, ROOM, shareToBob } from "../test-support/reshare.ts";
import type { EncryptedRoomEvent } from "./room-events.ts";

/** Charlie's copy of an event: the same ciphertext, posted under his name and device. */
function copied(event: ReturnType<typeof megolmEventIn>, eventId: string): EncryptedRoomEvent {
  return { ...event, event_id: eventId, sender: "@charlie:x", content: { ...event.content, device_id: "C" } };
}

describe("a re-share and a copied event after the creator's events decrypted", () => {
  it("leave the session the creator's: her events decrypt as hers, the copies fail", async () => {
    const { alice, bob, member: charlie } = await aliceMemberAndBob({ userId: "@charlie:x", deviceId: "C" });
    const session = OutboundGroupSession.create();
    await shareToBob(alice, session);
    await bob.sync();
    const one = megolmEventIn(session, ROOM, "@alice:x", "A", "one");
    assert.equal((await bob.machine.decryptRoomEvent(one, ROOM)).senderDevice, "A");

    await shareToBob(charlie, session);
    await bob.sync();
    const copy = await bob.machine.tryDecryptRoomEvent(copied(one, "$copy-one"), ROOM);
    assert.equal(copy.ok, false);
    // Alice's next event is still hers, and Charlie's copy of it is not his.
    const two = megolmEventIn(session, ROOM, "@alice:x", "A", "two");
    const decrypted = await bob.machine.decryptRoomEvent(two, ROOM);
    assert.deepEqual(
      [decrypted.sender, decrypted.senderDevice, decrypted.content.body],
      ["@alice:x", "A", "two"],
    );
    const copyTwo = await bob.machine.tryDecryptRoomEvent(copied(two, "$copy-two"), ROOM);
    assert.equal(copyTwo.ok ? copyTwo.event.sender : copyTwo.error.code, "MISMATCHED_SENDER");
    // Also after a restart, and her first event still reads.
    await bob.restart();
    assert.equal((await bob.machine.decryptRoomEvent(one, ROOM)).senderDevice, "A");
  });
});
