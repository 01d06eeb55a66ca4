// Damaged inbound session rows and the key backup, on the sealed back ends (SQLite, IndexedDB):
// the backup passes over a damaged row without marking it backed up, so a row that only looked
// damaged (a bug, since fixed) goes up from the next process on; and one backup step reads past
// at most MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP damaged rows, the next steps going on after them
// until every good key is uploaded.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { CryptoStore, RoomSessionKey } from "../../store/index.ts";
import { DAMAGEABLE_BACK_ENDS, type DamageableBackEnd } from "../../store/test-support/damageable.ts";
import { openDamageable } from "../test-support/damageable-machine.ts";
import { roomKeyEntry } from "../test-support/shared-history-backup.ts";
import { MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP } from "./key-backup.ts";

// Room IDs in that order: the damaged rows come before the good ones in every back end's order.
const DAMAGED_ROOM = "!a-damaged:example.org";
const GOOD_ROOM = "!b-good:example.org";

const made: DamageableBackEnd[] = [];
after(() => {
  for (const b of made) b.cleanUp();
});

/** `store`, counting the damaged rows each backup read names. */
function counting(store: CryptoStore, named: number[]): CryptoStore {
  const read: CryptoStore["getInboundGroupSessionsToBackUp"] = async (limit, unreadable, options) => {
    const list: RoomSessionKey[] = unreadable ?? [];
    const before = list.length;
    const records = await store.getInboundGroupSessionsToBackUp(limit, list, options);
    named.push(list.length - before);
    return records;
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "getInboundGroupSessionsToBackUp") return read;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** A machine on a new store of the back end, counting the damaged rows each backup read names. */
async function opened(make: () => DamageableBackEnd) {
  const backEnd = make();
  made.push(backEnd);
  const named: number[] = [];
  return { ...(await openDamageable(backEnd, (store) => counting(store, named))), named };
}

const uploadedIds = (batch: { body: { rooms: Record<string, { sessions: Record<string, unknown> }> } }) =>
  Object.values(batch.body.rooms)
    .flatMap((r) => Object.keys(r.sessions))
    .sort();

for (const { name, make } of DAMAGEABLE_BACK_ENDS.filter((b) => b.name !== "memory")) {
  describe(`key backup over damaged rows (${name} store)`, () => {
    it("a damaged row is not marked: once it reads again, the next process backs it up", async () => {
      const s = await opened(make);
      try {
        const keys = [roomKeyEntry(GOOD_ROOM, false), roomKeyEntry(GOOD_ROOM, false)];
        const [bad, good] = keys as [(typeof keys)[0], (typeof keys)[0]];
        await s.machine().importRoomKeys(keys);
        const { request } = await s.machine().backup.prepareVersion();
        await s.machine().backup.versionCreated(request.id, { version: "1" });
        await s.restart(() => s.backEnd.damage(GOOD_ROOM, bad.session_id));

        const batch = await s.machine().backup.nextUpload();
        assert.ok(batch);
        assert.deepEqual(uploadedIds(batch), [good.session_id]);
        assert.equal(await s.machine().backup.uploaded(batch.id), 1);
        assert.equal(await s.machine().backup.nextUpload(), undefined);
        const status = await s.machine().backup.status();
        assert.deepEqual([status.backedUp, status.total], [1, 2]);

        // The bug that made it look damaged is fixed: the row reads again, and goes up.
        await s.restart(() => s.backEnd.repair(GOOD_ROOM, bad.session_id));
        const next = await s.machine().backup.nextUpload();
        assert.ok(next, "the repaired row was marked backed up and never reaches the backup");
        assert.deepEqual(uploadedIds(next), [bad.session_id]);
        assert.equal(await s.machine().backup.uploaded(next.id), 1);
        assert.equal(await s.machine().backup.nextUpload(), undefined);
      } finally {
        await s.close();
      }
    });

    it("one step reads past at most MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP damaged rows; the next steps reach every good key", async () => {
      const s = await opened(make);
      try {
        const damaged = Array.from({ length: MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP + 20 }, () =>
          roomKeyEntry(DAMAGED_ROOM, false),
        );
        const good = [roomKeyEntry(GOOD_ROOM, false), roomKeyEntry(GOOD_ROOM, false)];
        // Imported first: first in the SQLite store's order too.
        await s.machine().importRoomKeys(damaged);
        await s.machine().importRoomKeys(good);
        const { request } = await s.machine().backup.prepareVersion();
        await s.machine().backup.versionCreated(request.id, { version: "1" });
        await s.restart(async () => {
          for (const k of damaged) await s.backEnd.damage(DAMAGED_ROOM, k.session_id);
        });
        s.named.length = 0;

        const uploaded: string[] = [];
        // Bounded: every step but the last gets on by at least one batch or the bound.
        for (let step = 0; step < 10; step++) {
          const batch = await s.machine().backup.nextUpload();
          if (batch === undefined) {
            if (s.named.reduce((a, b) => a + b, 0) >= damaged.length) break;
            continue;
          }
          uploaded.push(...uploadedIds(batch));
          await s.machine().backup.uploaded(batch.id);
        }
        assert.deepEqual(uploaded, good.map((k) => k.session_id).sort());
        assert.ok(
          s.named.every((n) => n <= MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP),
          `damaged rows read per step: ${s.named.join(", ")}`,
        );
        // Each damaged row was read once in this process, and none was marked.
        assert.equal(
          s.named.reduce((a, b) => a + b, 0),
          damaged.length,
        );
        assert.equal(await s.machine().backup.nextUpload(), undefined);
        const status = await s.machine().backup.status();
        assert.deepEqual([status.backedUp, status.total], [good.length, damaged.length + good.length]);
      } finally {
        await s.close();
      }
    });
  });
}
