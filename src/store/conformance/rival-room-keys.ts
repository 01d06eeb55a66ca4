/**
 * Rival room keys: direct shares of a session the engine holds that name another creator than its
 * copy, kept so a restart does not lose them. Upserted by room, session and sender key (a rival
 * saved again keeps its place), read back all at once first stored first, deleted one by one;
 * anyone can send them, so every back end bounds them alike, per session and in all.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { CryptoChanges } from "../changes.ts";
import { StoreError } from "../errors.ts";
import type { RivalRoomKeyRecord } from "../records.ts";
import { MAX_RIVAL_ROOM_KEYS_PER_SESSION, MAX_STORED_RIVAL_ROOM_KEYS } from "../store.ts";
import { ALICE, DEVICE, ROOM_A, ROOM_B, sample } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

const names = (rivals: readonly RivalRoomKeyRecord[]): string[] =>
  rivals.map((r) => `${r.roomId === ROOM_A ? "A" : "B"}/${r.sessionId}/${r.senderKey}`);

export function rivalRoomKeyTests({ withStore }: ConformanceSuite): void {
  it("keeps rival room keys across a reopen: first stored first, one per session and sender key", () =>
    withStore(async (s, fixture) => {
      const first = sample.rival(ROOM_A, "g1", "k1");
      await s.saveChanges({
        rivalRoomKeys: [first, { ...sample.rival(ROOM_B, "g1", "k1"), sharedHistory: true }],
      });
      await s.saveChanges({ rivalRoomKeys: [sample.rival(ROOM_A, "g1", "k2")] });
      // Saved again, the first takes the new value but keeps its place.
      const again = { ...sample.rival(ROOM_A, "g1", "k1", 5), senderClaimedEd25519: "ed-new" };
      await s.saveChanges({ rivalRoomKeys: [again] });
      const expected = [
        again,
        { ...sample.rival(ROOM_B, "g1", "k1"), sharedHistory: true },
        sample.rival(ROOM_A, "g1", "k2"),
      ];
      assert.deepEqual(await s.getRivalRoomKeys(), expected);
      // A copy: mutating what was read changes nothing stored.
      const [read] = (await s.getRivalRoomKeys()) as unknown as { pickle: { key: string } }[];
      if (read !== undefined) read.pickle.key = "mutated";
      await s.close();
      const reopened = await fixture.open({ userId: ALICE, deviceId: DEVICE });
      try {
        assert.deepEqual(await reopened.getRivalRoomKeys(), expected);
      } finally {
        await reopened.close();
      }
    }));

  it("deletes rival room keys by room, session and sender key, after the save's upserts", () =>
    withStore(async (s) => {
      await s.saveChanges({
        rivalRoomKeys: [sample.rival(ROOM_A, "g1", "k1"), sample.rival(ROOM_A, "g1", "k2")],
      });
      await s.saveChanges({
        rivalRoomKeys: [sample.rival(ROOM_A, "g2", "k1")],
        deletedRivalRoomKeys: [
          { roomId: ROOM_A, sessionId: "g1", senderKey: "k1" },
          // Saved and deleted in one save: deleted. Unknown ones are ignored.
          { roomId: ROOM_A, sessionId: "g2", senderKey: "k1" },
          { roomId: ROOM_B, sessionId: "g1", senderKey: "k1" },
        ],
      });
      assert.deepEqual(names(await s.getRivalRoomKeys()), ["A/g1/k2"]);
    }));

  it("a save that fails stores and deletes no rival room key", () =>
    withStore(async (s) => {
      await s.saveChanges({ rivalRoomKeys: [sample.rival(ROOM_A, "g1", "k1")] });
      const bad = {
        rivalRoomKeys: [sample.rival(ROOM_A, "g2", "k1"), { ...sample.rival(ROOM_A, "g3", "k1"), pickle: 7 }],
        deletedRivalRoomKeys: [{ roomId: ROOM_A, sessionId: "g1", senderKey: "k1" }],
      } as unknown as CryptoChanges;
      await assert.rejects(s.saveChanges(bad), (e) => e instanceof StoreError && e.code === "INVALID_RECORD");
      const badDelete = {
        deletedRivalRoomKeys: [{ roomId: ROOM_A, sessionId: "g1" }],
      } as unknown as CryptoChanges;
      await assert.rejects(
        s.saveChanges(badDelete),
        (e) => e instanceof StoreError && e.code === "INVALID_RECORD",
      );
      // Valid rivals in a save that fails elsewhere, before or after them: none is kept or deleted.
      for (const elsewhere of [{ customValues: { "bad\uD800": 1 } }, { nextBatch: "" }]) {
        await assert.rejects(
          s.saveChanges({
            rivalRoomKeys: [sample.rival(ROOM_A, "g2", "k1"), sample.rival(ROOM_A, "g1", "k1", 9)],
            deletedRivalRoomKeys: [{ roomId: ROOM_A, sessionId: "g1", senderKey: "k1" }],
            ...elsewhere,
          }),
        );
      }
      assert.deepEqual(await s.getRivalRoomKeys(), [sample.rival(ROOM_A, "g1", "k1")]);
    }));

  it(`keeps at most MAX_RIVAL_ROOM_KEYS_PER_SESSION (${MAX_RIVAL_ROOM_KEYS_PER_SESSION}) rival room keys of one session, its first stored first out`, () =>
    withStore(async (s) => {
      const keys = Array.from({ length: MAX_RIVAL_ROOM_KEYS_PER_SESSION }, (_, i) => `k${i}`);
      await s.saveChanges({
        rivalRoomKeys: [
          sample.rival(ROOM_A, "g1", "k0"),
          sample.rival(ROOM_B, "g1", "k0"), // another session: not counted with g1's
          ...keys.slice(1).map((k) => sample.rival(ROOM_A, "g1", k)),
        ],
      });
      assert.equal(
        (await s.getRivalRoomKeys()).length,
        MAX_RIVAL_ROOM_KEYS_PER_SESSION + 1,
        "the bound fits",
      );
      // Saved again, k0 keeps its place: still the first of g1 to go.
      await s.saveChanges({ rivalRoomKeys: [sample.rival(ROOM_A, "g1", "k0", 1)] });
      await s.saveChanges({ rivalRoomKeys: [sample.rival(ROOM_A, "g1", "new")] });
      assert.deepEqual(names(await s.getRivalRoomKeys()), [
        "B/g1/k0",
        ...keys.slice(1).map((k) => `A/g1/${k}`),
        "A/g1/new",
      ]);
    }));

  it(`keeps at most MAX_STORED_RIVAL_ROOM_KEYS (${MAX_STORED_RIVAL_ROOM_KEYS}) rival room keys, the first stored first out`, () =>
    withStore(async (s, fixture) => {
      const rival = (i: number) => sample.rival(ROOM_A, `g${i}`, "k");
      await s.saveChanges({
        rivalRoomKeys: Array.from({ length: MAX_STORED_RIVAL_ROOM_KEYS }, (_, i) => rival(i)),
      });
      assert.equal((await s.getRivalRoomKeys()).length, MAX_STORED_RIVAL_ROOM_KEYS, "the bound itself fits");
      // One deleted from the middle makes room for one.
      await s.saveChanges({
        deletedRivalRoomKeys: [{ roomId: ROOM_A, sessionId: "g5", senderKey: "k" }],
      });
      const next = MAX_STORED_RIVAL_ROOM_KEYS;
      await s.saveChanges({ rivalRoomKeys: [rival(next)] });
      assert.equal((await s.getRivalRoomKeys())[0]?.sessionId, "g0");
      await s.saveChanges({ rivalRoomKeys: [rival(next + 1), rival(next + 2)] });
      const held = (await s.getRivalRoomKeys()).map((r) => r.sessionId);
      assert.equal(held.length, MAX_STORED_RIVAL_ROOM_KEYS);
      assert.deepEqual(held.slice(0, 2), ["g2", "g3"], "two new push out the two oldest");
      assert.deepEqual(held.slice(-3), [`g${next}`, `g${next + 1}`, `g${next + 2}`]);
      // The order survives a reopen: the next new one pushes out g2.
      await s.close();
      const reopened = await fixture.open({ userId: ALICE, deviceId: DEVICE });
      try {
        await reopened.saveChanges({ rivalRoomKeys: [rival(next + 3)] });
        const after = (await reopened.getRivalRoomKeys()).map((r) => r.sessionId);
        assert.deepEqual(
          [after.length, after[0], after.at(-1)],
          [MAX_STORED_RIVAL_ROOM_KEYS, "g3", `g${next + 3}`],
        );
      } finally {
        await reopened.close();
      }
    }));
}
