// A session row found damaged when the server answers a backup upload (it read well when the batch
// was built): the answer still marks the batch's other sessions, and the next batch skips the row
// (unmarked: a row that only looked damaged through a bug goes up once it reads again) and reports it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StoreKeyError } from "../../store/errors.ts";
import { type CryptoStore, MemoryCryptoStore } from "../../store/index.ts";
import type { RoomSessionKey } from "../../store/records.ts";
import { OlmMachine } from "../machine.ts";
import { roomKeyEntry } from "../test-support/shared-history-backup.ts";

const ROOM = "!room:example.org";

/**
 * `inner`, except that once `damage.on` is set the row of `damage.sessionId` fails authentication,
 * as a sealed store's would: a lookup throws `TAMPERED`, the backup read leaves it out, named.
 */
function damageable(inner: CryptoStore, damage: { on: boolean; sessionId: string }): CryptoStore {
  const isDamaged = (sessionId: string) => damage.on && sessionId === damage.sessionId;
  const overrides: Partial<CryptoStore> = {
    async getInboundGroupSession(roomId, sessionId) {
      if (isDamaged(sessionId)) throw new StoreKeyError("TAMPERED", "test: a damaged row");
      return inner.getInboundGroupSession(roomId, sessionId);
    },
    async getInboundGroupSessionsToBackUp(limit, unreadable?: RoomSessionKey[]) {
      const all = await inner.getInboundGroupSessionsToBackUp(10_000);
      const damaged = all.filter((r) => isDamaged(r.sessionId));
      if (damaged.length > 0 && unreadable === undefined) throw new StoreKeyError("TAMPERED", "test");
      for (const r of damaged) unreadable?.push({ roomId: r.roomId, sessionId: r.sessionId });
      return all.filter((r) => !isDamaged(r.sessionId)).slice(0, limit);
    },
  };
  return new Proxy(inner, {
    get(target, prop) {
      const own = overrides[prop as keyof CryptoStore];
      if (own !== undefined) return own;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

describe("key backup: a row damaged while its batch is in flight", () => {
  it("the answer marks the others; the next batch skips it, unmarked, and reports it", async () => {
    const keys = [roomKeyEntry(ROOM, false), roomKeyEntry(ROOM, false)];
    const [bad, good] = keys as [(typeof keys)[0], (typeof keys)[0]];
    const damage = { on: false, sessionId: bad.session_id };
    const inner = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId: "A" });
    const machine = await OlmMachine.open({
      userId: "@a:example.org",
      deviceId: "A",
      store: damageable(inner, damage),
    });
    await machine.importRoomKeys(keys);
    const { request } = await machine.backup.prepareVersion();
    await machine.backup.versionCreated(request.id, { version: "1" });
    const batch = await machine.backup.nextUpload();
    assert.ok(batch);
    assert.equal(Object.keys(batch.body.rooms[ROOM]?.sessions ?? {}).length, 2);

    damage.on = true;
    assert.equal(await machine.backup.uploaded(batch.id), 1);
    assert.equal((await inner.getInboundGroupSession(ROOM, good.session_id))?.backedUp, true);
    assert.equal((await inner.getInboundGroupSession(ROOM, bad.session_id))?.backedUp, false);

    assert.equal(await machine.backup.nextUpload(), undefined);
    assert.equal((await inner.getInboundGroupSession(ROOM, bad.session_id))?.backedUp, false);
    assert.deepEqual((await machine.receiveSyncChanges({})).damagedInboundSessions, [
      { roomId: ROOM, sessionId: bad.session_id },
    ]);
    await machine.close();
    await inner.close();
  });
});
