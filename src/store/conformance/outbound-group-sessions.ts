/**
 * Outbound group sessions: one per room, and the updates that ratchet them and record shares.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { OutboundGroupSessionPickle } from "../../crypto/megolm/index.ts";
import { StoreError } from "../errors.ts";
import { ALICE, BOB, pickle, ROOM_A, ROOM_B, sample } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

export function outboundGroupSessionTests({ withStore }: ConformanceSuite): void {
  it("outbound group sessions: one per room, replace and delete", () =>
    withStore(async (s) => {
      await s.saveChanges({
        outboundGroupSessions: [sample.outbound(ROOM_A, "o1"), sample.outbound(ROOM_B, "o2")],
      });
      await s.saveChanges({ outboundGroupSessions: [sample.outbound(ROOM_A, "o3", 5)] });
      assert.deepEqual(await s.getOutboundGroupSession(ROOM_A), sample.outbound(ROOM_A, "o3", 5));
      await s.saveChanges({ deletedOutboundGroupSessions: [ROOM_B] });
      assert.equal(await s.getOutboundGroupSession(ROOM_B), undefined);
      assert.ok(await s.getOutboundGroupSession(ROOM_A));
    }));

  it("outbound group session updates: ratchet alone, device deltas merged, unknown session refused", () =>
    withStore(async (s) => {
      const base = sample.outbound(ROOM_A, "o1");
      // An update in the same batch as the upsert applies on top of it.
      await s.saveChanges({
        outboundGroupSessions: [base],
        outboundGroupSessionUpdates: [
          { roomId: ROOM_A, sessionId: "o1", pickle: pickle("outbound-o1", 1), messageCount: 1 },
        ],
      });
      assert.deepEqual(await s.getOutboundGroupSession(ROOM_A), {
        ...base,
        pickle: pickle("outbound-o1", 1),
        messageCount: 1,
      });
      // A message: only the ratchet and the count change.
      await s.saveChanges({
        outboundGroupSessionUpdates: [
          { roomId: ROOM_A, sessionId: "o1", pickle: pickle("outbound-o1", 2), messageCount: 2 },
        ],
      });
      assert.deepEqual(await s.getOutboundGroupSession(ROOM_A), {
        ...base,
        pickle: pickle("outbound-o1", 2),
        messageCount: 2,
      });
      // Sharing further: new requests in flight and devices told they won't get the key.
      await s.saveChanges({
        outboundGroupSessionUpdates: [
          {
            roomId: ROOM_A,
            sessionId: "o1",
            pickle: pickle("outbound-o1", 2),
            messageCount: 2,
            addPendingShares: { req2: { [BOB]: { BOBTABLET: 2 } } },
            addWithheldFrom: { [BOB]: ["BOBOLD", "BOBBAD"], [ALICE]: ["ALICEOLD"] },
          },
        ],
      });
      // Then req1 and req2 are delivered, in two updates of one batch (applied in order).
      await s.saveChanges({
        outboundGroupSessionUpdates: [
          {
            roomId: ROOM_A,
            sessionId: "o1",
            pickle: pickle("outbound-o1", 2),
            messageCount: 2,
            addSharedWith: { [ALICE]: { OTHER: 0 } },
            settledShares: ["req1"],
          },
          {
            roomId: ROOM_A,
            sessionId: "o1",
            pickle: pickle("outbound-o1", 3),
            messageCount: 3,
            addSharedWith: { [BOB]: { BOBTABLET: 2 } },
            settledShares: ["req2", "unknown-request"],
          },
        ],
      });
      assert.deepEqual(await s.getOutboundGroupSession(ROOM_A), {
        ...base,
        pickle: pickle("outbound-o1", 3),
        messageCount: 3,
        sharedWith: { [BOB]: { BOBPHONE: 0, BOBLAPTOP: 3, BOBTABLET: 2 }, [ALICE]: { OTHER: 0 } },
        pendingShares: {},
        withheldFrom: { [BOB]: ["BOBOLD", "BOBBAD"], [ALICE]: ["ALICEOLD"] },
      });
      const before = await s.getOutboundGroupSession(ROOM_A);
      // Another session's ratchet, or a room without a session: refused, and nothing else sticks.
      for (const update of [
        {
          roomId: ROOM_A,
          sessionId: "o-other",
          pickle: pickle<OutboundGroupSessionPickle>("x"),
          messageCount: 9,
        },
        {
          roomId: ROOM_B,
          sessionId: "o1",
          pickle: pickle<OutboundGroupSessionPickle>("x"),
          messageCount: 9,
        },
      ]) {
        await assert.rejects(
          s.saveChanges({ nextBatch: "t1", outboundGroupSessionUpdates: [update] }),
          (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
        );
      }
      assert.deepEqual(await s.getOutboundGroupSession(ROOM_A), before);
      assert.equal(await s.getNextBatch(), undefined);
      // A malformed update is refused too.
      await assert.rejects(
        s.saveChanges({
          outboundGroupSessionUpdates: [
            { roomId: ROOM_A, sessionId: "o1", pickle: pickle("x"), messageCount: -1 },
          ],
        }),
        (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
      );
      // Deleting the session in the same batch wins (deletions come after updates).
      await s.saveChanges({
        outboundGroupSessionUpdates: [
          { roomId: ROOM_A, sessionId: "o1", pickle: pickle("outbound-o1", 4), messageCount: 4 },
        ],
        deletedOutboundGroupSessions: [ROOM_A],
      });
      assert.equal(await s.getOutboundGroupSession(ROOM_A), undefined);
    }));
}
