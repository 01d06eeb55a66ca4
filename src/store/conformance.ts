/**
 * The shared `CryptoStore` conformance suite. Every back end's test file calls
 * `runCryptoStoreConformance` with a target; a custom store can do the same:
 *
 *   runCryptoStoreConformance({
 *     name: "my store",
 *     createFixture: async () => ({ open: (o) => MyStore.open({ ...o, location }), cleanup: async () => {} }),
 *     encrypted: true,
 *   });
 *
 * It registers `node:test` suites covering every method, the atomicity of `saveChanges`, reopen
 * persistence, identity mismatch, the one-open-at-a-time lock, wrong keys and a 100 000-session import.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { OutboundGroupSessionPickle } from "../crypto/megolm/index.ts";
import type { CryptoChanges } from "./changes.ts";
import {
  ALICE,
  BOB,
  checkFull,
  DEVICE,
  deviceOf,
  fullChanges,
  keyRequestOf,
  pickle,
  ROOM_A,
  ROOM_B,
  sample,
} from "./conformance-samples.ts";
import { StoreError, StoreKeyError, StoreLockedError, StoreMismatchError } from "./errors.ts";
import type { AccountRecord, InboundGroupSessionRecord } from "./records.ts";
import type { CryptoStore } from "./store.ts";

export { sample } from "./conformance-samples.ts";

export interface ConformanceOpenOptions {
  readonly userId: string;
  readonly deviceId?: string;
  /** Encrypting targets protect the store with it (fixtures may use few KDF iterations). */
  readonly passphrase?: string;
}

/** One store location; `open` may be called many times on it (reopen = restart). */
export interface ConformanceFixture {
  open(options: ConformanceOpenOptions): Promise<CryptoStore>;
  cleanup(): Promise<void>;
}

export interface ConformanceTarget {
  readonly name: string;
  /** A fresh, empty location on every call. */
  createFixture(): Promise<ConformanceFixture>;
  /** The target encrypts at rest and checks the passphrase. */
  readonly encrypted: boolean;
  /** Inbound sessions in the bulk import test (default 100 000). */
  readonly bulkCount?: number;
  /**
   * Several handles (processes, tabs) may open the location at once and take turns through the
   * lease (SQLite, IndexedDB). False: a second open is refused with `StoreLockedError("LOCKED")`.
   */
  readonly shared?: boolean;
}

export function runCryptoStoreConformance(target: ConformanceTarget): void {
  const withStore = async (
    body: (store: CryptoStore, fixture: ConformanceFixture) => Promise<void>,
    options: ConformanceOpenOptions = { userId: ALICE, deviceId: DEVICE },
  ): Promise<void> => {
    const fixture = await target.createFixture();
    const store = await fixture.open(options);
    try {
      await body(store, fixture);
    } finally {
      await store.close();
      await fixture.cleanup();
    }
  };

  describe(`CryptoStore conformance: ${target.name}`, () => {
    describe("identity", () => {
      it("refuses to create a store without a device ID", async () => {
        const fixture = await target.createFixture();
        try {
          await assert.rejects(
            fixture.open({ userId: ALICE }),
            (e) => e instanceof StoreError && e.code === "IDENTITY_REQUIRED",
          );
        } finally {
          await fixture.cleanup();
        }
      });

      it("records the identity, restores the device ID and refuses another user or device", async () => {
        const fixture = await target.createFixture();
        try {
          const first = await fixture.open({ userId: ALICE, deviceId: DEVICE });
          assert.deepEqual(await first.loadIdentity(), { userId: ALICE, deviceId: DEVICE });
          await first.close();
          const restored = await fixture.open({ userId: ALICE });
          assert.deepEqual(await restored.loadIdentity(), { userId: ALICE, deviceId: DEVICE });
          await restored.close();
          await assert.rejects(fixture.open({ userId: BOB, deviceId: DEVICE }), (e) => {
            assert.ok(e instanceof StoreMismatchError);
            assert.equal(e.code, "USER_MISMATCH");
            assert.match(e.message, /@alice:example\.org/);
            assert.match(e.message, /@bob:example\.org/);
            return true;
          });
          await assert.rejects(fixture.open({ userId: ALICE, deviceId: "OTHER" }), (e) => {
            assert.ok(e instanceof StoreMismatchError);
            assert.equal(e.code, "DEVICE_MISMATCH");
            assert.deepEqual(e.stored, { userId: ALICE, deviceId: DEVICE });
            assert.match(e.message, /ALICEDEVICE/);
            return true;
          });
          // The failed opens left the store usable.
          const again = await fixture.open({ userId: ALICE, deviceId: DEVICE });
          await again.close();
        } finally {
          await fixture.cleanup();
        }
      });
    });

    if (target.shared === true) {
      it("shares the location between handles through the lease, refusing stale writes", async () => {
        const fixture = await target.createFixture();
        try {
          const a = await fixture.open({ userId: ALICE, deviceId: DEVICE });
          const b = await fixture.open({ userId: ALICE, deviceId: DEVICE });
          try {
            assert.deepEqual(await a.tryAcquireLease(60_000), { stale: false });
            assert.equal(await b.tryAcquireLease(60_000), undefined, "held by a");
            assert.equal(await a.renewLease(60_000), true);
            await a.saveChanges({ nextBatch: "s1" });
            await a.releaseLease();
            // b takes it after a wrote: b's memory is stale, and says so once.
            assert.deepEqual(await b.tryAcquireLease(60_000), { stale: true });
            assert.equal(await b.getNextBatch(), "s1");
            await b.saveChanges({ nextBatch: "s2" });
            assert.equal(await a.tryAcquireLease(60_000), undefined, "held by b");
            // a, not holding it and behind b, may not write.
            await assert.rejects(a.saveChanges({ nextBatch: "old" }), (e) => {
              assert.ok(e instanceof StoreLockedError);
              assert.equal(e.code, "STALE");
              return true;
            });
            assert.equal(await a.renewLease(60_000), false);
            await b.releaseLease();
            assert.deepEqual(await b.tryAcquireLease(60_000), { stale: false }, "nobody came in between");
            await b.releaseLease();
            // A save outside the lease takes the store for one transaction: the others reload.
            await b.saveChanges({ nextBatch: "s3" });
            assert.deepEqual(await a.tryAcquireLease(60_000), { stale: true });
            assert.equal(await a.getNextBatch(), "s3");
            await a.saveChanges({ nextBatch: "s4" });
            await a.releaseLease();
            await assert.rejects(b.saveChanges({ nextBatch: "old" }), StoreLockedError);
            assert.equal(await b.getNextBatch(), "s4", "the refused write saved nothing");
          } finally {
            await a.close();
            await b.close();
          }
          // Closing released it.
          const c = await fixture.open({ userId: ALICE, deviceId: DEVICE });
          assert.notEqual(await c.tryAcquireLease(60_000), undefined);
          await c.close();
        } finally {
          await fixture.cleanup();
        }
      });
    } else {
      it("allows one open handle at a time and releases the lock on close", async () => {
        const fixture = await target.createFixture();
        try {
          const first = await fixture.open({ userId: ALICE, deviceId: DEVICE });
          assert.deepEqual(await first.tryAcquireLease(60_000), { stale: false }, "one handle: never stale");
          await assert.rejects(fixture.open({ userId: ALICE, deviceId: DEVICE }), (e) => {
            assert.ok(e instanceof StoreLockedError);
            assert.equal(e.code, "LOCKED");
            return true;
          });
          await first.close();
          const second = await fixture.open({ userId: ALICE, deviceId: DEVICE });
          await second.close();
        } finally {
          await fixture.cleanup();
        }
      });
    }

    it("refuses use after close", async () => {
      const fixture = await target.createFixture();
      const store = await fixture.open({ userId: ALICE, deviceId: DEVICE });
      await store.close();
      await store.close(); // idempotent
      await assert.rejects(store.getNextBatch(), (e) => e instanceof StoreError && e.code === "CLOSED");
      await assert.rejects(store.saveChanges({}), (e) => e instanceof StoreError && e.code === "CLOSED");
      await fixture.cleanup();
    });

    it("starts empty", () =>
      withStore(async (s) => {
        assert.equal(await s.loadAccount(), undefined);
        assert.deepEqual(await s.getOlmSessions("k1"), []);
        assert.equal(await s.getInboundGroupSession(ROOM_A, "g1"), undefined);
        assert.deepEqual(await s.getInboundGroupSessionsForRoom(ROOM_A), []);
        assert.deepEqual(await s.countInboundGroupSessions(), { total: 0, backedUp: 0 });
        assert.deepEqual(await s.getInboundGroupSessionsToBackUp(10), []);
        assert.equal(await s.getOutboundGroupSession(ROOM_A), undefined);
        assert.equal(await deviceOf(s, BOB, "X"), undefined);
        assert.deepEqual(await s.getUserDevices(BOB), []);
        assert.equal(await s.getDeviceByCurve25519Key("curve-X"), undefined);
        assert.equal(await s.getCrossSigningIdentity(BOB), undefined);
        assert.equal(await s.getSecret("m.megolm_backup.v1"), undefined);
        assert.deepEqual(await s.getTrackedUsers(), []);
        assert.deepEqual(await s.getOutgoingKeyRequests(), []);
        assert.equal(await keyRequestOf(s, { requestId: "kr1" }), undefined);
        assert.equal(await keyRequestOf(s, { roomId: ROOM_A, sessionId: "x" }), undefined);
        assert.equal(await s.getWithheld(ROOM_A, "w1"), undefined);
        assert.equal(await s.isOlmMessageKnown("k1", "h"), false);
        assert.equal(await s.getCustomValue("x"), undefined);
        assert.equal(await s.getReplay(ROOM_A, "g1", 0), undefined);
        assert.deepEqual(await s.getReplays(ROOM_A, "g1", 10), []);
        assert.equal(await s.getRoomSettings(ROOM_A), undefined);
        assert.equal(await s.getBackupState(), undefined);
        assert.deepEqual(await s.getQueuedRequests(), []);
        assert.equal(await s.getNextBatch(), undefined);
        await s.saveChanges({});
        assert.equal(await s.getNextBatch(), undefined);
      }));

    it("round-trips every record type", () =>
      withStore(async (s) => {
        await s.saveChanges(fullChanges());
        await checkFull(s);
      }));

    it("keeps everything across a reopen", async () => {
      const fixture = await target.createFixture();
      try {
        const opts = { userId: ALICE, deviceId: DEVICE, passphrase: "correct horse" };
        const first = await fixture.open(opts);
        await first.saveChanges(fullChanges());
        await first.close();
        const second = await fixture.open(opts);
        await checkFull(second);
        await second.close();
      } finally {
        await fixture.cleanup();
      }
    });

    it("returns copies: mutating a returned record changes nothing", () =>
      withStore(async (s) => {
        await s.saveChanges(fullChanges());
        const got = (await s.getInboundGroupSession(ROOM_A, "g2")) as unknown as { pickle: { key: string } };
        got.pickle.key = "mutated";
        const dev = (await deviceOf(s, BOB, "BOBLAPTOP")) as { trust: string };
        dev.trust = "blacklisted";
        await checkFull(s);
      }));

    it("account: replaces the record and keeps optional fields only when set", () =>
      withStore(async (s) => {
        await s.saveChanges({ account: sample.account(0) });
        assert.deepEqual(await s.loadAccount(), sample.account(0));
        const next: AccountRecord = {
          pickle: pickle("account", 9),
          deviceKeysUploaded: true,
          fallbackKeyCreatedAt: 99,
        };
        await s.saveChanges({ account: next });
        assert.deepEqual(await s.loadAccount(), next);
      }));

    it("olm sessions: many per sender key, upsert and delete", () =>
      withStore(async (s) => {
        await s.saveChanges({
          olmSessions: [sample.olm("k1", "s1"), sample.olm("k1", "s2"), sample.olm("k2", "s3")],
        });
        assert.equal((await s.getOlmSessions("k1")).length, 2);
        await s.saveChanges({ olmSessions: [sample.olm("k1", "s1", 50)] });
        const s1 = (await s.getOlmSessions("k1")).find((r) => r.sessionId === "s1");
        assert.equal(s1?.lastUsedAt, 50);
        await s.saveChanges({
          deletedOlmSessions: [
            { senderKey: "k1", sessionId: "s2" },
            { senderKey: "k9", sessionId: "x" },
          ],
        });
        assert.deepEqual(
          (await s.getOlmSessions("k1")).map((r) => r.sessionId),
          ["s1"],
        );
        assert.equal((await s.getOlmSessions("k2")).length, 1);
      }));

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

    it("devices: per user, by Curve25519 key (live first), trust and deleted flags", () =>
      withStore(async (s) => {
        await s.saveChanges({
          devices: [
            sample.device(BOB, "OLD", { curve25519Key: "shared", deleted: true }),
            sample.device(BOB, "NEW", { curve25519Key: "shared" }),
            sample.device(ALICE, "PHONE", { trust: "blacklisted" }),
          ],
        });
        assert.equal((await s.getUserDevices(BOB)).length, 2);
        assert.equal((await s.getDeviceByCurve25519Key("shared"))?.deviceId, "NEW");
        assert.equal((await deviceOf(s, ALICE, "PHONE"))?.trust, "blacklisted");
        await s.saveChanges({ devices: [sample.device(ALICE, "PHONE", { trust: "ignored" })] });
        assert.equal((await deviceOf(s, ALICE, "PHONE"))?.trust, "ignored");
        await s.saveChanges({
          devices: [sample.device(BOB, "NEW", { curve25519Key: "shared", deleted: true })],
        });
        assert.equal((await s.getDeviceByCurve25519Key("shared"))?.deleted, true);
      }));

    it("cross-signing: identities per user replaced whole, private keys as secrets set and deleted", async () => {
      const identity = (master: string, pinned: string) => ({
        version: 1,
        master: { user_id: BOB, usage: ["master"], keys: { [`ed25519:${master}`]: master } },
        pinned,
        was_verified: true,
      });
      await withStore(async (s) => {
        await s.saveChanges({
          crossSigningIdentities: [
            { userId: BOB, identity: identity("m1", "m1") },
            { userId: ALICE, identity: identity("a1", "a1") },
          ],
          secrets: { "m.cross_signing.self_signing": "c2VsZg", "m.cross_signing.user_signing": "dXNlcg" },
        });
        // A new master key for Bob: the whole record is replaced (the pin stays where the engine put it).
        await s.saveChanges({ crossSigningIdentities: [{ userId: BOB, identity: identity("m2", "m1") }] });
        assert.deepEqual((await s.getCrossSigningIdentity(BOB))?.identity, identity("m2", "m1"));
        assert.deepEqual((await s.getCrossSigningIdentity(ALICE))?.identity, identity("a1", "a1"));
        assert.equal(await s.getCrossSigningIdentity("@carol:example.org"), undefined);
        await s.saveChanges({ secrets: { "m.cross_signing.user_signing": null } });
        assert.equal(await s.getSecret("m.cross_signing.self_signing"), "c2VsZg");
        assert.equal(await s.getSecret("m.cross_signing.user_signing"), undefined);
      });
    });

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
        assert.deepEqual(await s.getReplays(ROOM_B, "g1", 10), [r(ROOM_B, "g1", 5)]);
        assert.deepEqual(await s.getReplays(ROOM_A, "g2", 10), []);
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

    it("saveChanges is all-or-nothing", () =>
      withStore(async (s) => {
        await s.saveChanges({ account: sample.account(0), nextBatch: "before" });
        const bad = {
          account: sample.account(5),
          inboundGroupSessions: [sample.inbound(ROOM_A, "g1")],
          secrets: { x: "y" },
          backupState: { version: "1", algorithm: "a", authData: {} },
          queuedRequests: [sample.queued("q1", 1)],
          olmMessageHashes: [{ senderKey: "k1", hash: "h" }],
          customValues: { c: 1 },
          // Valid records first, then one the store must refuse: everything above must roll back.
          devices: [sample.device(BOB, "OK"), { ...sample.device(BOB, "BAD"), trust: "trusted-ish" }],
          nextBatch: "after",
        } as unknown as CryptoChanges;
        await assert.rejects(
          s.saveChanges(bad),
          (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
        );
        assert.deepEqual(await s.loadAccount(), sample.account(0));
        assert.equal(await s.getNextBatch(), "before");
        assert.equal(await s.getInboundGroupSession(ROOM_A, "g1"), undefined);
        assert.equal(await deviceOf(s, BOB, "OK"), undefined);
        assert.equal(await s.getSecret("x"), undefined);
        assert.equal(await s.getBackupState(), undefined);
        assert.deepEqual(await s.getQueuedRequests(), []);
        assert.equal(await s.isOlmMessageKnown("k1", "h"), false);
        assert.equal(await s.getCustomValue("c"), undefined);
        // Everything valid except the token, which is applied last: still nothing may stick.
        const badToken = {
          ...(bad as object),
          devices: [sample.device(BOB, "OK")],
          nextBatch: "",
        } as CryptoChanges;
        await assert.rejects(
          s.saveChanges(badToken),
          (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
        );
        assert.deepEqual(await s.loadAccount(), sample.account(0));
        assert.equal(await deviceOf(s, BOB, "OK"), undefined);
        assert.equal(await s.isOlmMessageKnown("k1", "h"), false);
        assert.equal(await s.getCustomValue("c"), undefined);
        assert.equal(await s.getInboundGroupSession(ROOM_A, "g1"), undefined);
        assert.equal(await s.getNextBatch(), "before");
        // A pickle that is not plain JSON is refused the same way.
        const notJson = {
          inboundGroupSessions: [sample.inbound(ROOM_A, "g2", { pickle: { n: 1n } as never })],
          nextBatch: "x",
        };
        await assert.rejects(
          s.saveChanges(notJson),
          (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
        );
        assert.equal(await s.getNextBatch(), "before");
        // ... and the store still works.
        await s.saveChanges({ nextBatch: "after" });
        assert.equal(await s.getNextBatch(), "after");
      }));

    it("refuses strings that are not well-formed Unicode; every string it accepts reads back exactly", () =>
      withStore(async (s) => {
        for (const lone of ["!r\uD800:x", "\uDC00", "a\uDBFFb"]) {
          await assert.rejects(
            s.saveChanges({ inboundGroupSessions: [sample.inbound(lone, "s1")] }),
            (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
          );
          await assert.rejects(
            s.saveChanges({ olmSessions: [sample.olm(lone, "s1")] }),
            (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
          );
        }
        // Accepted strings (astral characters, U+FFFD itself, NUL, RTL) come back as written and
        // their rows authenticate: listing and reading them work.
        const odd = ["!\u{1F600}:x", "!\uFFFD:x", "!a\u0000b:x", "!\u202Eevil:x", "!\u00E9:x"];
        await s.saveChanges({
          inboundGroupSessions: odd.map((room) => sample.inbound(room, "s1")),
          olmSessions: odd.map((key) => sample.olm(key, "s1")),
        });
        for (const room of odd) {
          assert.equal((await s.getInboundGroupSession(room, "s1"))?.roomId, room);
          assert.equal((await s.getOlmSessions(room))[0]?.senderKey, room);
        }
        const listed = await s.listInboundGroupSessions({ limit: 100 });
        assert.deepEqual(listed.map((r) => r.roomId).sort(), [...odd].sort());
      }));

    if (target.encrypted) {
      it("refuses a wrong passphrase or a missing one", async () => {
        const fixture = await target.createFixture();
        try {
          const store = await fixture.open({ userId: ALICE, deviceId: DEVICE, passphrase: "hunter2-Right" });
          await store.saveChanges({ secrets: { s: "v" } });
          await store.close();
          await assert.rejects(fixture.open({ userId: ALICE, passphrase: "guess-9Qz" }), (e) => {
            assert.ok(e instanceof StoreKeyError);
            assert.equal(e.code, "WRONG_KEY");
            assert.doesNotMatch(e.message, /hunter2|guess-9Qz/);
            return true;
          });
          await assert.rejects(
            fixture.open({ userId: ALICE }),
            (e) => e instanceof StoreKeyError && e.code === "KEY_KIND_MISMATCH",
          );
          const again = await fixture.open({ userId: ALICE, passphrase: "hunter2-Right" });
          assert.equal(await again.getSecret("s"), "v");
          await again.close();
        } finally {
          await fixture.cleanup();
        }
      });
    }

    it("imports many inbound sessions in one saveChanges and reads them back", () =>
      withStore(async (s) => {
        const count = target.bulkCount ?? 100_000;
        const rooms = 50;
        const records: InboundGroupSessionRecord[] = [];
        for (let i = 0; i < count; i++) {
          records.push(
            sample.inbound(`!room${i % rooms}:example.org`, `session${String(i).padStart(7, "0")}`),
          );
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
        assert.equal((await s.getInboundGroupSessionsToBackUp(500)).length, Math.min(500, count));
      }));
  });
}
