// One damaged inbound Megolm session row, on every store back end: the readers of many sessions
// at once (key backup uploads, key export, history-sharing bundles) skip it and still handle every
// good key, the backup passes over it (unmarked), it is reported once (IDs only), and a good copy of
// the key (an import, a restore from the backup) replaces the row.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DAMAGEABLE_BACK_ENDS, type DamageableBackEnd } from "../../store/test-support/damageable.ts";
import { openDamageable } from "../test-support/damageable-machine.ts";
import { roomKeyEntry } from "../test-support/shared-history-backup.ts";

const ROOM = "!room:example.org";

const made: DamageableBackEnd[] = [];
after(() => {
  for (const b of made) b.cleanUp();
});

/** A new store of the back end and a machine on it, reopened (a restart) on demand. */
async function opened(make: () => DamageableBackEnd) {
  const backEnd = make();
  made.push(backEnd);
  return openDamageable(backEnd);
}

const sessionIds = (keys: readonly { session_id: string }[]) => keys.map((k) => k.session_id).sort();

for (const { name, make } of DAMAGEABLE_BACK_ENDS) {
  describe(`a damaged inbound session row (${name} store)`, () => {
    it("backup, export and bundles skip it and handle every good key; reported once; a good copy replaces it", async () => {
      const s = await opened(make);
      const { backEnd } = s;
      try {
        const keys = [roomKeyEntry(ROOM, true), roomKeyEntry(ROOM, true), roomKeyEntry(ROOM, true)];
        const [good1, bad, good2] = keys as [(typeof keys)[0], (typeof keys)[0], (typeof keys)[0]];
        await s.machine().importRoomKeys(keys);
        const { request } = await s.machine().backup.prepareVersion();
        await s.machine().backup.versionCreated(request.id, { version: "1" });
        await s.restart(() => backEnd.damage(ROOM, bad.session_id));
        const m = s.machine();

        // The backup: one batch with every good key, and no batch after it (the damaged row is
        // passed over in this process, however many times the client asks, but not marked).
        const batch = await m.backup.nextUpload();
        assert.ok(batch);
        assert.deepEqual(
          Object.keys(batch.body.rooms[ROOM]?.sessions ?? {}).sort(),
          sessionIds([good1, good2]),
        );
        await m.backup.uploaded(batch.id);
        assert.equal(await m.backup.nextUpload(), undefined);
        const status = await m.backup.status();
        assert.deepEqual([status.backedUp, status.total], [backEnd.sealed ? 2 : 3, 3]);

        // Export (by room, and every room a page at a time) and the history bundle: the good keys.
        assert.deepEqual(sessionIds(await m.exportRoomKeys([ROOM])), sessionIds([good1, good2]));
        const pages: { session_id: string }[][] = [];
        for await (const page of m.exportAllRoomKeys({ pageSize: 1 })) pages.push(page);
        assert.deepEqual(
          pages.map((p) => p.length),
          [1, 1],
        );
        assert.deepEqual(sessionIds(pages.flat()), sessionIds([good1, good2]));
        const bundle = await m.historySharing.buildBundle(ROOM);
        assert.deepEqual(sessionIds(bundle.room_keys), sessionIds([good1, good2]));

        // Reported once, IDs only (a memory store holds no sealed rows: nothing to report there).
        const expected = backEnd.sealed ? [{ roomId: ROOM, sessionId: bad.session_id }] : [];
        assert.deepEqual((await m.receiveSyncChanges({})).damagedInboundSessions, expected);
        assert.deepEqual((await m.receiveSyncChanges({})).damagedInboundSessions, []);

        // A good copy replaces the row: exported, and backed up (it is a new copy to upload).
        assert.equal((await m.importRoomKeys([bad])).imported, 1);
        const next = await m.backup.nextUpload();
        assert.ok(next);
        assert.deepEqual(Object.keys(next.body.rooms[ROOM]?.sessions ?? {}), [bad.session_id]);
        await m.backup.uploaded(next.id);
        await s.restart();
        assert.deepEqual(sessionIds(await s.machine().exportRoomKeys([ROOM])), sessionIds(keys));
        assert.equal(await s.machine().backup.nextUpload(), undefined);
      } finally {
        await s.close();
      }
    });

    it("a restore from the backup replaces it", async () => {
      const s = await opened(make);
      const { backEnd } = s;
      try {
        const keys = [roomKeyEntry(ROOM, false), roomKeyEntry(ROOM, false)];
        const [bad, good] = keys as [(typeof keys)[0], (typeof keys)[0]];
        await s.machine().importRoomKeys(keys);
        const { request } = await s.machine().backup.prepareVersion();
        await s.machine().backup.versionCreated(request.id, { version: "1" });
        const batch = await s.machine().backup.nextUpload();
        assert.ok(batch);
        assert.equal(await s.machine().backup.uploaded(batch.id), 2);
        await s.restart(() => backEnd.damage(ROOM, bad.session_id));
        assert.deepEqual(sessionIds(await s.machine().exportRoomKeys([ROOM])), [good.session_id]);

        const restored = await s.machine().backup.restore(batch.body, { version: "1" });
        assert.deepEqual([restored.imported, restored.total, restored.failed], [1, 2, 0]);
        await s.restart();
        const exported = await s.machine().exportRoomKeys([ROOM]);
        assert.deepEqual(sessionIds(exported), sessionIds(keys));
        assert.equal(exported.find((k) => k.session_id === bad.session_id)?.session_key, bad.session_key);
        // Restored from the version we upload to: not uploaded again.
        assert.equal(await s.machine().backup.nextUpload(), undefined);
      } finally {
        await s.close();
      }
    });
  });
}
