/**
 * Inbound group sessions: per room, backup marks and batches, the key backup state beside them,
 * page-by-page listing and a bulk import; the shared-history flag on both directions.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { StoreError } from "../errors.ts";
import type { InboundGroupSessionRecord } from "../records.ts";
import { MAX_INBOUND_SESSIONS_PER_LOOKUP } from "../store.ts";
import { ROOM_A, ROOM_B, sample } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

export function inboundGroupSessionTests({ target, withStore }: ConformanceSuite): void {
  it("the shared-history flag of inbound and outbound sessions (MSC4268) is kept; false reads as absent", () =>
    withStore(async (s) => {
      await s.saveChanges({
        inboundGroupSessions: [
          sample.inbound(ROOM_A, "h1", { sharedHistory: true }),
          sample.inbound(ROOM_A, "h2", { sharedHistory: false }),
        ],
        outboundGroupSessions: [{ ...sample.outbound(ROOM_A, "o1"), sharedHistory: true }],
      });
      assert.equal((await s.getInboundGroupSession(ROOM_A, "h1"))?.sharedHistory, true);
      assert.deepEqual(await s.getInboundGroupSession(ROOM_A, "h2"), sample.inbound(ROOM_A, "h2"));
      assert.equal((await s.getOutboundGroupSession(ROOM_A))?.sharedHistory, true);
      await s.saveChanges({ outboundGroupSessions: [sample.outbound(ROOM_A, "o2")] });
      assert.deepEqual(await s.getOutboundGroupSession(ROOM_A), sample.outbound(ROOM_A, "o2"));
    }));

  it("backup batches pass over the rows `skip` names (not counted towards the limit); maxUnreadable must be positive", () =>
    withStore(async (s) => {
      await s.saveChanges({
        inboundGroupSessions: ["k1", "k2", "k3"].map((id) => sample.inbound(ROOM_A, id)),
      });
      const skip = (roomId: string, sessionId: string) => roomId === ROOM_A && sessionId !== "k2";
      const batch = await s.getInboundGroupSessionsToBackUp(1, [], { skip, maxUnreadable: 1 });
      assert.deepEqual(
        batch.map((r) => r.sessionId),
        ["k2"],
      );
      assert.equal((await s.getInboundGroupSessionsToBackUp(10, [], { skip: () => false })).length, 3);
      await assert.rejects(
        s.getInboundGroupSessionsToBackUp(1, [], { maxUnreadable: 1.5 }),
        (e) => e instanceof StoreError && e.code === "BAD_OPTION",
      );
    }));

  it("inbound group sessions: by room, counts, backup batches, marks and reset", () =>
    withStore(async (s) => {
      const sessions = ["g5", "g1", "g4", "g2", "g3"].map((id) => sample.inbound(ROOM_A, id));
      await s.saveChanges({
        inboundGroupSessions: [...sessions, sample.inbound(ROOM_B, "g0", { backedUp: true })],
      });
      assert.deepEqual(await s.countInboundGroupSessions(), { total: 6, backedUp: 1 });
      assert.deepEqual((await s.getInboundGroupSessionsForRoom(ROOM_A)).map((r) => r.sessionId).sort(), [
        "g1",
        "g2",
        "g3",
        "g4",
        "g5",
      ]);
      assert.equal((await s.getInboundGroupSessionsForRoom(ROOM_B)).length, 1);
      // In a stable order of the back end's choosing (key order, row order...).
      const batch = await s.getInboundGroupSessionsToBackUp(2);
      assert.equal(batch.length, 2);
      assert.deepEqual(
        (await s.getInboundGroupSessionsToBackUp(2)).map((r) => r.sessionId),
        batch.map((r) => r.sessionId),
      );
      const first = batch.map((r) => r.sessionId);
      await s.saveChanges({ backedUp: batch.map(({ roomId, sessionId }) => ({ roomId, sessionId })) });
      const rest = (await s.getInboundGroupSessionsToBackUp(10)).map((r) => r.sessionId);
      assert.deepEqual([...first, ...rest].sort(), ["g1", "g2", "g3", "g4", "g5"]);
      assert.equal((await s.getInboundGroupSession(ROOM_A, first[0] ?? ""))?.backedUp, true);
      assert.deepEqual(await s.countInboundGroupSessions(), { total: 6, backedUp: 3 });
      // Insert and mark in one batch; unknown marks are ignored.
      await s.saveChanges({
        inboundGroupSessions: [sample.inbound(ROOM_B, "g9")],
        backedUp: [
          { roomId: ROOM_B, sessionId: "g9" },
          { roomId: ROOM_B, sessionId: "nope" },
        ],
      });
      assert.deepEqual(await s.countInboundGroupSessions(), { total: 7, backedUp: 4 });
      // A new backup version: everything needs uploading again.
      await s.saveChanges({ resetBackedUp: true });
      assert.deepEqual(await s.countInboundGroupSessions(), { total: 7, backedUp: 0 });
      assert.equal((await s.getInboundGroupSessionsToBackUp(100)).length, 7);
      // Upsert replaces.
      await s.saveChanges({
        inboundGroupSessions: [sample.inbound(ROOM_A, "g1", { firstKnownIndex: 12 })],
      });
      assert.equal((await s.getInboundGroupSession(ROOM_A, "g1"))?.firstKnownIndex, 12);
      await assert.rejects(
        s.getInboundGroupSessionsToBackUp(0),
        (e) => e instanceof StoreError && e.code === "BAD_OPTION",
      );
    }));

  it("key backup: a new version, its key and restored marks in one batch; trust and stop reason", () =>
    withStore(async (s) => {
      const v1 = { version: "1", algorithm: "m.megolm_backup.v1.curve25519-aes-sha2", authData: {} };
      await s.saveChanges({
        inboundGroupSessions: [
          sample.inbound(ROOM_A, "g1", { backedUp: true }),
          sample.inbound(ROOM_A, "g2"),
        ],
        backupState: { ...v1, trusted: true },
        secrets: { "m.megolm_backup.v1": "a2V5MQ" },
      });
      // Version 2 replaces it: every mark is cleared first, then the restored session is marked.
      await s.saveChanges({
        resetBackedUp: true,
        backupState: { ...v1, version: "2", trusted: false },
        secrets: { "m.megolm_backup.v1": "a2V5Mg" },
        inboundGroupSessions: [sample.inbound(ROOM_B, "g3")],
        backedUp: [{ roomId: ROOM_B, sessionId: "g3" }],
      });
      assert.deepEqual(await s.getBackupState(), { ...v1, version: "2", trusted: false });
      assert.equal(await s.getSecret("m.megolm_backup.v1"), "a2V5Mg");
      assert.deepEqual(await s.countInboundGroupSessions(), { total: 3, backedUp: 1 });
      assert.deepEqual(
        (await s.getInboundGroupSessionsToBackUp(10)).map((r) => r.sessionId),
        ["g1", "g2"],
      );
      await s.saveChanges({
        backupState: { ...v1, version: "2", trusted: true, stopped: "version_deleted" },
      });
      assert.equal((await s.getBackupState())?.stopped, "version_deleted");
      await assert.rejects(
        s.saveChanges({ backupState: { ...v1, trusted: "yes" } as never }),
        (e) => e instanceof StoreError,
      );
      assert.equal((await s.getBackupState())?.stopped, "version_deleted");
    }));

  it("inbound group sessions: listed page by page in room, then session, order", () =>
    withStore(async (s) => {
      assert.deepEqual(await s.listInboundGroupSessions({ limit: 10 }), []);
      // Saved out of order, across batches, with IDs that share prefixes.
      const keys: [string, string][] = [
        [ROOM_B, "s2"],
        [ROOM_A, "s10"],
        [ROOM_B, "s1"],
        [ROOM_A, "s1"],
        [ROOM_A, "s"],
        [ROOM_A, "s2"],
        [ROOM_B, "s10"],
      ];
      await s.saveChanges({
        inboundGroupSessions: keys.slice(0, 4).map(([r, id]) => sample.inbound(r, id)),
      });
      await s.saveChanges({ inboundGroupSessions: keys.slice(4).map(([r, id]) => sample.inbound(r, id)) });
      const expected = [...keys]
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
        .map(([r, id]) => sample.inbound(r, id));
      for (const limit of [1, 2, 3, 7, 100]) {
        const seen: InboundGroupSessionRecord[] = [];
        let after: { roomId: string; sessionId: string } | undefined;
        for (;;) {
          const page = await s.listInboundGroupSessions(after === undefined ? { limit } : { after, limit });
          assert.ok(page.length <= limit);
          seen.push(...page);
          const last = page[page.length - 1];
          if (page.length < limit || last === undefined) break;
          after = { roomId: last.roomId, sessionId: last.sessionId };
        }
        assert.deepEqual(seen, expected, `limit ${limit}`);
      }
      // A cursor need not name a stored session; sessions added later show up in later pages.
      assert.deepEqual(
        await s.listInboundGroupSessions({ after: { roomId: ROOM_A, sessionId: "s15" }, limit: 2 }),
        [sample.inbound(ROOM_A, "s2"), sample.inbound(ROOM_B, "s1")],
      );
      await s.saveChanges({ inboundGroupSessions: [sample.inbound(ROOM_A, "s3", { firstKnownIndex: 4 })] });
      assert.deepEqual(
        await s.listInboundGroupSessions({ after: { roomId: ROOM_A, sessionId: "s2" }, limit: 1 }),
        [sample.inbound(ROOM_A, "s3", { firstKnownIndex: 4 })],
      );
      for (const bad of [
        { limit: 0 },
        { limit: 1.5 },
        { limit: -1 },
        { after: { roomId: ROOM_A }, limit: 1 },
      ]) {
        await assert.rejects(
          s.listInboundGroupSessions(bad as { limit: number }),
          (e) => e instanceof StoreError && e.code === "BAD_OPTION",
        );
      }
    }));

  it("inbound group sessions: many looked up at once, each stored one once, bounded", () =>
    withStore(async (s) => {
      const ids = ["m1", "m2", "m3", "m\u00e9", "m10"];
      await s.saveChanges({
        inboundGroupSessions: [
          ...ids.map((id) => sample.inbound(ROOM_A, id)),
          sample.inbound(ROOM_B, "m1", { firstKnownIndex: 7, backedUp: true }),
        ],
      });
      assert.deepEqual(await s.getInboundGroupSessions([]), []);
      const bySession = (records: InboundGroupSessionRecord[]) =>
        records.map((r) => `${r.roomId} ${r.sessionId}`).sort();
      // Unknown keys and repeats add nothing; same session ID in another room is another session.
      const found = await s.getInboundGroupSessions([
        { roomId: ROOM_A, sessionId: "m2" },
        { roomId: ROOM_B, sessionId: "m1" },
        { roomId: ROOM_A, sessionId: "nope" },
        { roomId: ROOM_A, sessionId: "m\u00e9" },
        { roomId: ROOM_A, sessionId: "m2" },
        { roomId: "!unknown:example.org", sessionId: "m1" },
      ]);
      assert.deepEqual(bySession(found), [`${ROOM_A} m2`, `${ROOM_A} m\u00e9`, `${ROOM_B} m1`].sort());
      // The same records one lookup at a time gives (copies: changing them changes nothing stored).
      for (const r of found) {
        assert.deepEqual(r, await s.getInboundGroupSession(r.roomId, r.sessionId));
        (r as { firstKnownIndex: number }).firstKnownIndex = 99;
      }
      assert.equal((await s.getInboundGroupSession(ROOM_B, "m1"))?.firstKnownIndex, 7);
      assert.equal(
        (await s.getInboundGroupSessions(ids.map((sessionId) => ({ roomId: ROOM_A, sessionId })))).length,
        ids.length,
      );
      const tooMany = Array.from({ length: MAX_INBOUND_SESSIONS_PER_LOOKUP + 1 }, (_, i) => ({
        roomId: ROOM_A,
        sessionId: `k${i}`,
      }));
      for (const bad of [tooMany, [{ roomId: ROOM_A }], "m1"]) {
        await assert.rejects(
          s.getInboundGroupSessions(bad as never),
          (e) => e instanceof StoreError && e.code === "BAD_OPTION",
        );
      }
      assert.equal(
        (await s.getInboundGroupSessions(tooMany.slice(0, MAX_INBOUND_SESSIONS_PER_LOOKUP))).length,
        0,
      );
    }));

  it("imports many inbound sessions in one saveChanges and reads them back", () =>
    withStore(async (s) => {
      const count = target.bulkCount ?? 100_000;
      const rooms = 50;
      const records: InboundGroupSessionRecord[] = [];
      for (let i = 0; i < count; i++) {
        records.push(sample.inbound(`!room${i % rooms}:example.org`, `session${String(i).padStart(7, "0")}`));
      }
      await s.saveChanges({ inboundGroupSessions: records });
      assert.deepEqual(await s.countInboundGroupSessions(), { total: count, backedUp: 0 });
      for (const i of [0, 1, Math.floor(count / 2), count - 1]) {
        assert.deepEqual(
          await s.getInboundGroupSession(records[i]?.roomId ?? "", records[i]?.sessionId ?? ""),
          records[i],
        );
      }
      assert.equal(
        (await s.getInboundGroupSessionsForRoom("!room7:example.org")).length,
        Math.ceil((count - 7) / rooms),
      );
      const some = [0, 3, Math.floor(count / 3), count - 1].map(
        (i) => records[i] as InboundGroupSessionRecord,
      );
      const many = await s.getInboundGroupSessions(
        some.map(({ roomId, sessionId }) => ({ roomId, sessionId })),
      );
      assert.deepEqual(
        many.sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1)),
        [...some].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1)),
      );
      assert.equal((await s.getInboundGroupSessionsToBackUp(500)).length, Math.min(500, count));
    }));
}
