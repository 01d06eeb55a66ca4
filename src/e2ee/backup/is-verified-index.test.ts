// `is_verified` on an uploaded session is what servers rank copies by first (spec "Server-side key
// backups"; Synapse replaces any unverified copy with a verified one, whatever its index). Our
// device often holds a session only from a later index (it appeared after the session started)
// while another device of ours backed it up from index 0: matrix-rust-sdk (Element) always uploads
// `is_verified: false`. Claimed for a later-index copy, it made the server drop the earlier one,
// and the backup lost the session's first messages. It is claimed only from index 0 now, where no
// copy is better.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { aliceMemberAndBob, ROOM, shareToBob } from "../test-support/reshare.ts";

/** The spec's rule: whether the server keeps `next` in place of `held`. */
function replaces(
  held: { is_verified: boolean; first_message_index: number },
  next: { is_verified: boolean; first_message_index: number },
): boolean {
  if (next.is_verified !== held.is_verified) return next.is_verified;
  return next.first_message_index < held.first_message_index;
}

describe("is_verified on uploaded room keys", () => {
  it("is claimed for a verified sender's direct key from index 0 only: a later copy never displaces an earlier one", async () => {
    const { alice, bob } = await aliceMemberAndBob({ userId: "@charlie:x", deviceId: "C" });
    await bob.machine.setDeviceTrust("@alice:x", "A", "verified");
    const fromStart = OutboundGroupSession.create();
    const joinedLate = OutboundGroupSession.create();
    for (let i = 0; i < 3; i++) joinedLate.encrypt(`before bob: ${i}`);
    await shareToBob(alice, fromStart);
    await shareToBob(alice, joinedLate);
    await bob.sync();

    const { request } = await bob.machine.backup.prepareVersion();
    await bob.machine.backup.versionCreated(request.id, { version: "1" });
    const batch = await bob.machine.backup.nextUpload();
    assert.ok(batch);
    const sessions = batch.body.rooms[ROOM]?.sessions ?? {};
    const start = sessions[fromStart.sessionId];
    const late = sessions[joinedLate.sessionId];
    assert.ok(start && late);
    assert.deepEqual([start.first_message_index, start.is_verified], [0, true]);
    assert.deepEqual([late.first_message_index, late.is_verified], [3, false]);
    // Another of Bob's devices (an Element one) backed the late session up from index 0: it stays.
    assert.equal(replaces({ is_verified: false, first_message_index: 0 }, late), false);
  });
});
