/**
 * A session we hold from an import (a key file, the backup, a history-sharing bundle) or a forward
 * names its creator; a member's direct share of it names themselves. Such a share must not take
 * the session over, neither once the creator's events decrypted under the claim we hold nor
 * before: it waits as a rival, which only events from its own sender could promote.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import type { EncryptedRoomEvent } from "../decryption/room-events.ts";
import { megolmEventIn } from "../test-support/fake-homeserver.ts";
import { aliceMemberAndBob, importNaming, ROOM, shareToBob } from "../test-support/reshare.ts";

/** Bob holds Alice's session from an import (claim: Alice); Alice and Charlie have Olm sessions to him. */
async function importedByBob() {
  const { alice, bob, member: charlie } = await aliceMemberAndBob({ userId: "@charlie:x", deviceId: "C" });
  const session = OutboundGroupSession.create();
  await importNaming(bob, alice, session);
  return { alice, bob, charlie, session };
}

describe("a member's direct share of a session we imported", () => {
  it("does not take it over once the creator's events decrypted; her own share still does", async () => {
    const { alice, bob, charlie, session } = await importedByBob();
    const one = megolmEventIn(session, ROOM, "@alice:x", "A", "one");
    assert.equal((await bob.machine.decryptRoomEvent(one, ROOM)).senderDevice, "A");

    // Charlie, holding the key as every member does, shares it to Bob as his own.
    await shareToBob(charlie, session);
    await bob.sync();
    const two = megolmEventIn(session, ROOM, "@alice:x", "A", "two");
    const decrypted = await bob.machine.decryptRoomEvent(two, ROOM);
    assert.deepEqual([decrypted.sender, decrypted.senderDevice], ["@alice:x", "A"]);
    // His copy of her event is not his.
    const copy: EncryptedRoomEvent = {
      ...two,
      event_id: "$copy-two",
      sender: "@charlie:x",
      content: { ...two.content, device_id: "C" },
    };
    const outcome = await bob.machine.tryDecryptRoomEvent(copy, ROOM);
    assert.equal(outcome.ok ? outcome.event.sender : outcome.error.code, "MISMATCHED_SENDER");

    // Alice's own share still makes the key a direct one (same creator, better authenticated).
    await shareToBob(alice, session);
    await bob.sync();
    const three = await bob.machine.decryptRoomEvent(
      megolmEventIn(session, ROOM, "@alice:x", "A", "three"),
      ROOM,
    );
    assert.deepEqual([three.senderDevice, three.forwarded], ["A", false]);
  });

  it("does not take it over before any event decrypted either: the creator's events decrypt as hers", async () => {
    const { bob, charlie, session } = await importedByBob();
    // Charlie shares the key as his own before Bob decrypted anything with it.
    await shareToBob(charlie, session);
    await bob.sync();
    const one = megolmEventIn(session, ROOM, "@alice:x", "A", "one");
    const decrypted = await bob.machine.decryptRoomEvent(one, ROOM);
    assert.deepEqual([decrypted.sender, decrypted.senderDevice], ["@alice:x", "A"]);
    const copy: EncryptedRoomEvent = {
      ...one,
      event_id: "$copy-one",
      sender: "@charlie:x",
      content: { ...one.content, device_id: "C" },
    };
    const outcome = await bob.machine.tryDecryptRoomEvent(copy, ROOM);
    assert.equal(outcome.ok ? outcome.event.sender : outcome.error.code, "MISMATCHED_SENDER");
  });
});
