/**
 * The remaining records: secrets, tracked users, key requests, withheld notices, replay records,
 * Olm message hashes, custom values, room settings, backup state, the request queue and the sync token.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { StoreError } from "../errors.ts";
import type { InboundGroupSessionRecord, ReplayRecord } from "../records.ts";
import { MAX_INBOUND_SESSIONS_PER_LOOKUP } from "../store.ts";
import { ALICE, BOB, DEVICE, fullChanges, keyRequestOf, ROOM_A, ROOM_B, sample } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

export function secretsAndStateTests({ withStore }: ConformanceSuite): void {
  it("secrets, tracked users, key requests, withheld, replays, settings, backup, queue, token", () =>
    withStore(async (s) => {
      await s.saveChanges(fullChanges());
      await s.saveChanges({
        secrets: { "m.cross_signing.master": null, "m.megolm_backup.v1": "bmV3" },
        untrackedUsers: [ALICE],
        trackedUsers: [{ userId: BOB, outdated: false }],
        outgoingKeyRequests: [{ ...sample.keyRequest("kr1", ROOM_A, "missing"), state: "sent" }],
        deletedQueuedRequests: ["q1"],
        queuedRequests: [sample.queued("q3", 5)],
        backupState: null,
        nextBatch: "s2_token",
      });
      assert.equal(await s.getSecret("m.cross_signing.master"), undefined);
      assert.equal(await s.getSecret("m.megolm_backup.v1"), "bmV3");
      assert.deepEqual(await s.getTrackedUsers(), [{ userId: BOB, outdated: false }]);
      assert.equal((await keyRequestOf(s, { roomId: ROOM_A, sessionId: "missing" }))?.state, "sent");
      assert.equal((await s.getOutgoingKeyRequests()).length, 1);
      assert.deepEqual(
        (await s.getQueuedRequests()).map((q) => q.requestId),
        ["q3", "q2"],
      );
      assert.equal(await s.getBackupState(), undefined);
      assert.equal(await s.getNextBatch(), "s2_token");
      await s.saveChanges({ deletedOutgoingKeyRequests: ["kr1"] });
      assert.equal(await keyRequestOf(s, { requestId: "kr1" }), undefined);
      assert.equal(await s.getReplay(ROOM_A, "g1", 4), undefined);
      assert.equal((await s.getReplay(ROOM_A, "g1", 3))?.eventId, "$e3");
    }));

  it("tracked users keep their sender-only order across a reopen, and lose it when saved without", () =>
    withStore(async (s, fixture) => {
      const CAROL = "@carol:example.org";
      await s.saveChanges({
        trackedUsers: [
          { userId: ALICE, outdated: true },
          { userId: BOB, outdated: true, senderOrder: 7 },
          { userId: CAROL, outdated: false, senderOrder: 2 },
        ],
      });
      // The last record of a user in one save wins, mark and all.
      await s.saveChanges({
        trackedUsers: [
          { userId: BOB, outdated: false, senderOrder: 8 },
          { userId: ALICE, outdated: false, senderOrder: 9 },
          { userId: ALICE, outdated: false },
        ],
      });
      await s.close();
      const reopened = await fixture.open({ userId: ALICE, deviceId: DEVICE });
      try {
        assert.deepEqual(await reopened.getTrackedUsers(), [
          { userId: ALICE, outdated: false },
          { userId: BOB, outdated: false, senderOrder: 8 },
          { userId: CAROL, outdated: false, senderOrder: 2 },
        ]);
        await reopened.saveChanges({ trackedUsers: [{ userId: BOB, outdated: true }] });
        await assert.rejects(
          reopened.saveChanges({ trackedUsers: [{ userId: CAROL, outdated: true, senderOrder: -1 }] }),
          (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
        );
        assert.deepEqual(await reopened.getTrackedUsers(), [
          { userId: ALICE, outdated: false },
          { userId: BOB, outdated: true },
          { userId: CAROL, outdated: false, senderOrder: 2 },
        ]);
      } finally {
        await reopened.close();
      }
    }));

  it("replay records of one session, lowest index first, up to a limit", () =>
    withStore(async (s) => {
      const r = (roomId: string, sessionId: string, messageIndex: number) => ({
        roomId,
        sessionId,
        messageIndex,
        eventId: `$${roomId}${sessionId}${messageIndex}`,
        timestamp: messageIndex,
      });
      // Written out of order, with neighbours whose IDs are prefixes of each other.
      await s.saveChanges({ replays: [r(ROOM_A, "g1", 10), r(ROOM_A, "g1", 2), r(ROOM_A, "g", 1)] });
      await s.saveChanges({ replays: [r(ROOM_A, "g12", 0), r(ROOM_B, "g1", 5), r(ROOM_A, "g1", 7)] });
      assert.deepEqual(await s.getReplays(ROOM_A, "g1", 10), [
        r(ROOM_A, "g1", 2),
        r(ROOM_A, "g1", 7),
        r(ROOM_A, "g1", 10),
      ]);
      assert.deepEqual(await s.getReplays(ROOM_A, "g1", 2), [r(ROOM_A, "g1", 2), r(ROOM_A, "g1", 7)]);
      // None (IndexedDB's getAll takes a count of 0 as no limit at all).
      assert.deepEqual(await s.getReplays(ROOM_A, "g1", 0), []);
      assert.deepEqual(await s.getReplays(ROOM_B, "g1", 10), [r(ROOM_B, "g1", 5)]);
      assert.deepEqual(await s.getReplays(ROOM_A, "g2", 10), []);
      // Many sessions at once: each one's first records, sessions in no set order, repeats once.
      const bySession = (records: ReplayRecord[]) =>
        [...records].sort((a, b) =>
          a.roomId !== b.roomId
            ? a.roomId < b.roomId
              ? -1
              : 1
            : a.sessionId !== b.sessionId
              ? a.sessionId < b.sessionId
                ? -1
                : 1
              : a.messageIndex - b.messageIndex,
        );
      const sessions = [
        { roomId: ROOM_A, sessionId: "g1" },
        { roomId: ROOM_B, sessionId: "g1" },
        { roomId: ROOM_A, sessionId: "g2" },
        { roomId: ROOM_A, sessionId: "g" },
        { roomId: ROOM_A, sessionId: "g1" },
      ];
      assert.deepEqual(
        bySession(await s.getReplaysOfSessions(sessions, 2)),
        bySession([r(ROOM_A, "g1", 2), r(ROOM_A, "g1", 7), r(ROOM_B, "g1", 5), r(ROOM_A, "g", 1)]),
      );
      const all = await s.getReplaysOfSessions(sessions, 10);
      assert.deepEqual(
        all.filter((x) => x.roomId === ROOM_A && x.sessionId === "g1"),
        [r(ROOM_A, "g1", 2), r(ROOM_A, "g1", 7), r(ROOM_A, "g1", 10)],
      );
      assert.equal(all.length, 5);
      assert.deepEqual(await s.getReplaysOfSessions([], 10), []);
      for (const [bad, limit] of [
        [sessions, 0],
        [sessions, 1.5],
        [[{ roomId: ROOM_A }], 1],
        [
          Array.from({ length: MAX_INBOUND_SESSIONS_PER_LOOKUP + 1 }, (_, i) => ({
            roomId: ROOM_A,
            sessionId: `k${i}`,
          })),
          1,
        ],
      ] as const) {
        await assert.rejects(
          s.getReplaysOfSessions(bad as never, limit),
          (e) => e instanceof StoreError && e.code === "BAD_OPTION",
        );
      }
      // A failed save adds none of its records.
      await assert.rejects(
        s.saveChanges({
          replays: [r(ROOM_A, "g1", 3)],
          inboundGroupSessions: [{ not: "a record" } as unknown as InboundGroupSessionRecord],
        }),
      );
      assert.equal((await s.getReplays(ROOM_A, "g1", 10)).length, 3);
    }));

  it("olm message hashes, custom values and withheld notices per session", () =>
    withStore(async (s) => {
      await s.saveChanges({
        olmMessageHashes: [
          { senderKey: "k1", hash: "h1" },
          { senderKey: "k1", hash: "h1" },
        ],
        customValues: { a: { nested: [1, { b: null }] }, b: "text", c: false },
        withheld: [
          { roomId: ROOM_A, sessionId: "w2", code: "m.blacklisted", sender: BOB, senderKey: "curveBob" },
          { roomId: ROOM_A, sessionId: "w1", code: "m.unverified", sender: BOB },
          { roomId: ROOM_B, sessionId: "w3", code: "m.no_olm", sender: BOB },
        ],
      });
      await s.saveChanges({ olmMessageHashes: [{ senderKey: "k1", hash: "h1" }] });
      assert.equal(await s.isOlmMessageKnown("k1", "h1"), true);
      assert.equal(await s.isOlmMessageKnown("k2", "h1"), false);
      assert.equal(await s.isOlmMessageKnown("k1", "h2"), false);
      assert.deepEqual(await s.getCustomValue("a"), { nested: [1, { b: null }] });
      assert.equal(await s.getCustomValue("c"), false);
      await s.saveChanges({ customValues: { a: null, b: "changed" } });
      assert.equal(await s.getCustomValue("a"), undefined);
      assert.equal(await s.getCustomValue("b"), "changed");
      assert.equal((await s.getWithheld(ROOM_A, "w1"))?.code, "m.unverified");
      assert.equal((await s.getWithheld(ROOM_B, "w3"))?.code, "m.no_olm");
      assert.equal(await s.getWithheld(ROOM_B, "w1"), undefined);
      assert.equal((await s.getWithheld(ROOM_A, "w2"))?.senderKey, "curveBob");
    }));
}
