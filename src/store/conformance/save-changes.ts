/**
 * `saveChanges` as a whole: an empty store, every record type round-tripped, copies returned,
 * all-or-nothing batches, and the strings a store must refuse or keep exactly.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { CryptoChanges } from "../changes.ts";
import { StoreError } from "../errors.ts";
import { BOB, checkFull, deviceOf, fullChanges, keyRequestOf, ROOM_A, sample } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

export function saveChangesTests({ withStore }: ConformanceSuite): void {
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
      assert.deepEqual(await s.getRivalRoomKeys(), []);
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

  it("returns copies: mutating a returned record changes nothing", () =>
    withStore(async (s) => {
      await s.saveChanges(fullChanges());
      const got = (await s.getInboundGroupSession(ROOM_A, "g2")) as unknown as { pickle: { key: string } };
      got.pickle.key = "mutated";
      const dev = (await deviceOf(s, BOB, "BOBLAPTOP")) as { trust: string };
      dev.trust = "blacklisted";
      await checkFull(s);
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
      await assert.rejects(s.saveChanges(bad), (e) => e instanceof StoreError && e.code === "INVALID_RECORD");
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
}
