/**
 * A batch is marked uploaded only for the copies it carried: a session whose stored copy was
 * replaced while the batch was in flight by a better-authenticated one at the same index (the
 * creator's own `m.room_key` after an import or a forward) still goes up, so the backup ends up
 * with the direct copy's claim and `is_verified`, not the import's.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { megolmEventIn } from "../test-support/fake-homeserver.ts";
import { aliceMemberAndBob, importNaming, ROOM, shareToBob } from "../test-support/reshare.ts";

describe("a session replaced while its upload batch is in flight", () => {
  it("by the creator's direct share at the same index is not marked backed up: it goes up again", async () => {
    const { alice, bob } = await aliceMemberAndBob({ userId: "@charlie:x", deviceId: "C" });
    const session = OutboundGroupSession.create();
    await importNaming(bob, alice, session);
    const { request } = await bob.machine.backup.prepareVersion();
    await bob.machine.backup.versionCreated(request.id, { version: "1" });

    const batch = await bob.machine.backup.nextUpload();
    assert.ok(batch);
    assert.ok(batch.body.rooms[ROOM]?.sessions[session.sessionId]);
    // Alice's own share arrives before the server answers: the stored copy is now a direct one.
    await shareToBob(alice, session);
    await bob.sync();
    const direct = await bob.machine.decryptRoomEvent(
      megolmEventIn(session, ROOM, "@alice:x", "A", "hi"),
      ROOM,
    );
    assert.equal(direct.forwarded, false);
    await bob.machine.backup.uploaded(batch.id);

    const again = await bob.machine.backup.nextUpload();
    assert.ok(again, "the direct copy is uploaded too");
    assert.ok(again.body.rooms[ROOM]?.sessions[session.sessionId]);
    await bob.machine.backup.uploaded(again.id);
    assert.equal(await bob.machine.backup.nextUpload(), undefined);
  });
});
