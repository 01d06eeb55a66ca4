// The bulk reads of inbound sessions over damaged rows (failing authentication), for each back end
// whose rows are sealed: given `unreadable`, a damaged row is left out and named there, reads with
// a limit read on past it, it can be marked backed up, and a good copy saved over it replaces it.
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { ROOM_A, ROOM_B, sample } from "../conformance/samples.ts";
import { StoreError, StoreKeyError } from "../errors.ts";
import type { InboundGroupSessionRecord, RoomSessionKey } from "../records.ts";
import type { CryptoStore } from "../store.ts";
import type { DamageableBackEnd } from "./damageable.ts";

const ALL = ["s1", "s2", "s3", "s4", "s5", "s6"];
/** Two damaged rows in a row (s4, s5), so a page or a batch must read on past more than one. */
const DAMAGED = ["s2", "s4", "s5"];
const GOOD_IN_A = ALL.filter((id) => !DAMAGED.includes(id));

const ids = (rs: readonly RoomSessionKey[]) => rs.map((r) => `${r.roomId}/${r.sessionId}`);
const idsOf = (roomId: string, sessionIds: readonly string[]) => sessionIds.map((s) => `${roomId}/${s}`);
const isTampered = (e: unknown) => e instanceof StoreKeyError && e.code === "TAMPERED";

export function damagedInboundRowsTests(make: () => DamageableBackEnd): void {
  const made: DamageableBackEnd[] = [];
  const open: CryptoStore[] = [];
  after(async () => {
    for (const s of open) await s.close().catch(() => undefined);
    for (const b of made) b.cleanUp();
  });

  /** A store holding room A's s1..s6 (s2, s4, s5 damaged) and room B's b1. */
  async function damagedStore() {
    const backEnd = make();
    made.push(backEnd);
    const first = await backEnd.open();
    await first.saveChanges({
      inboundGroupSessions: [...ALL.map((id) => sample.inbound(ROOM_A, id)), sample.inbound(ROOM_B, "b1")],
    });
    await first.close();
    for (const id of DAMAGED) await backEnd.damage(ROOM_A, id);
    const store = await backEnd.open();
    open.push(store);
    return { backEnd, store };
  }

  it("without `unreadable`, a bulk read meeting a damaged row throws TAMPERED", async () => {
    const { store } = await damagedStore();
    await assert.rejects(store.getInboundGroupSessionsForRoom(ROOM_A), isTampered);
    await assert.rejects(store.listInboundGroupSessions({ limit: 10 }), isTampered);
    await assert.rejects(store.getInboundGroupSessionsToBackUp(10), isTampered);
    // The room without damage reads as before.
    assert.deepEqual(await store.getInboundGroupSessionsForRoom(ROOM_B), [sample.inbound(ROOM_B, "b1")]);
  });

  it("getInboundGroupSessionsForRoom leaves damaged rows out and names them", async () => {
    const { store } = await damagedStore();
    const unreadable: RoomSessionKey[] = [];
    const records = await store.getInboundGroupSessionsForRoom(ROOM_A, unreadable);
    assert.deepEqual(
      records,
      GOOD_IN_A.map((id) => sample.inbound(ROOM_A, id)),
    );
    assert.deepEqual(ids(unreadable), idsOf(ROOM_A, DAMAGED));
  });

  it("listInboundGroupSessions reads past damaged rows: full pages, and the last record is the cursor", async () => {
    const { store } = await damagedStore();
    const unreadable: RoomSessionKey[] = [];
    const pages: InboundGroupSessionRecord[][] = [];
    let after: RoomSessionKey | undefined;
    for (;;) {
      const page = await store.listInboundGroupSessions(
        after === undefined ? { limit: 2 } : { after, limit: 2 },
        unreadable,
      );
      pages.push(page);
      const last = page[page.length - 1];
      if (page.length < 2 || last === undefined) break;
      after = { roomId: last.roomId, sessionId: last.sessionId };
    }
    // Four good sessions: two full pages, then an empty last one (it read past nothing more).
    assert.deepEqual(
      pages.map((p) => p.length),
      [2, 2, 0],
    );
    assert.deepEqual(ids(pages.flat()), [...idsOf(ROOM_A, GOOD_IN_A), `${ROOM_B}/b1`]);
    assert.deepEqual(ids(unreadable), idsOf(ROOM_A, DAMAGED));
  });

  it("getInboundGroupSessionsToBackUp reads past damaged rows; marked backed up, they are not read again", async () => {
    const { store } = await damagedStore();
    const good: RoomSessionKey[] = [];
    const unreadable: RoomSessionKey[] = [];
    const sizes: number[] = [];
    for (;;) {
      assert.ok(sizes.length < 10, "the batches never end");
      const seen = unreadable.length;
      const batch = await store.getInboundGroupSessionsToBackUp(2, unreadable);
      sizes.push(batch.length);
      if (batch.length === 0 && unreadable.length === seen) break;
      good.push(...batch);
      // As the backup does: the batch's sessions and the damaged rows met, in one save.
      await store.saveChanges({ backedUp: [...batch, ...unreadable.slice(seen)] });
    }
    // Four good sessions: two full batches (each read on past damaged rows), then none.
    assert.deepEqual(sizes, [2, 2, 0]);
    assert.deepEqual(ids(good).sort(), [...idsOf(ROOM_A, GOOD_IN_A), `${ROOM_B}/b1`].sort());
    assert.deepEqual(ids(unreadable).sort(), idsOf(ROOM_A, DAMAGED).sort());
    assert.deepEqual(await store.countInboundGroupSessions(), { total: 7, backedUp: 7 });
  });

  it("getInboundGroupSessionsToBackUp stops at maxUnreadable damaged rows and passes over skipped rows unopened", async () => {
    const { store } = await damagedStore();
    const unreadable: RoomSessionKey[] = [];
    // In order: s1, s2 (damaged), s3, s4 (damaged): the bound reached, short of the limit.
    const first = await store.getInboundGroupSessionsToBackUp(10, unreadable, { maxUnreadable: 2 });
    assert.deepEqual(ids(first), idsOf(ROOM_A, ["s1", "s3"]));
    assert.deepEqual(ids(unreadable), idsOf(ROOM_A, ["s2", "s4"]));
    // Those two skipped (and a good row, s1): the read goes on past them, naming s5 only.
    const skipped = new Set(["s1", "s2", "s4"]);
    const skip = (roomId: string, sessionId: string) => roomId === ROOM_A && skipped.has(sessionId);
    const more: RoomSessionKey[] = [];
    const second = await store.getInboundGroupSessionsToBackUp(10, more, { skip, maxUnreadable: 2 });
    assert.deepEqual(ids(second), [...idsOf(ROOM_A, ["s3", "s6"]), `${ROOM_B}/b1`]);
    assert.deepEqual(ids(more), idsOf(ROOM_A, ["s5"]));
    // Skipped rows do not count towards the limit either, and a batch never exceeds it.
    assert.deepEqual(
      ids(await store.getInboundGroupSessionsToBackUp(1, [], { skip })),
      idsOf(ROOM_A, ["s3"]),
    );
    const onlyS1 = (roomId: string, sessionId: string) => roomId === ROOM_A && sessionId === "s1";
    assert.deepEqual(
      ids(await store.getInboundGroupSessionsToBackUp(2, [], { skip: onlyS1 })),
      idsOf(ROOM_A, ["s3", "s6"]),
    );
    await assert.rejects(
      store.getInboundGroupSessionsToBackUp(10, [], { maxUnreadable: 0 }),
      (e: unknown) => e instanceof StoreError && e.code === "BAD_OPTION",
    );
  });

  it("a good copy saved over a damaged row replaces it", async () => {
    const { backEnd, store } = await damagedStore();
    await store.saveChanges({ inboundGroupSessions: [sample.inbound(ROOM_A, "s4")] });
    assert.deepEqual(await store.getInboundGroupSession(ROOM_A, "s4"), sample.inbound(ROOM_A, "s4"));
    const unreadable: RoomSessionKey[] = [];
    const records = await store.getInboundGroupSessionsForRoom(ROOM_A, unreadable);
    assert.deepEqual(
      records.map((r) => r.sessionId),
      ["s1", "s3", "s4", "s6"],
    );
    assert.deepEqual(ids(unreadable), idsOf(ROOM_A, ["s2", "s5"]));
    // Not backed up (a new copy to upload), and kept across a restart.
    const toBackUp: RoomSessionKey[] = [];
    assert.ok((await store.getInboundGroupSessionsToBackUp(10, toBackUp)).some((r) => r.sessionId === "s4"));
    await store.close();
    const again = await backEnd.open();
    open.push(again);
    assert.deepEqual(await again.getInboundGroupSession(ROOM_A, "s4"), sample.inbound(ROOM_A, "s4"));
  });
}
