/**
 * A local attacker (or a disk fault) damages one row of the store file (SQLite): the record is
 * treated as absent, deleted and reported (IDs only); the client goes on syncing, what the damage
 * did not touch still works, and the peer gets a new session.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { FakeHomeserver, joined, TestClient } from "../../src/e2ee/test-support/fake-homeserver.ts";
import { DEFAULT_SQLITE_FILE_NAME, SqliteCryptoStore } from "../../src/store/sqlite/sqlite-store.ts";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ROOM_A = "!alice:x";
const ROOM_C = "!carol:x";
const WITH_ALICE = joined("@alice:x", "@bob:x");
const WITH_CAROL = joined("@carol:x", "@bob:x");

/** Bob on a SQLite store, with an Olm session with Alice's and with Carol's device. */
async function world() {
  const directory = mkdtempSync(join(tmpdir(), "keyroom-damaged-"));
  dirs.push(directory);
  const path = join(directory, DEFAULT_SQLITE_FILE_NAME);
  let damage: ((db: Database.Database) => void) | undefined;
  const hs = new FakeHomeserver();
  const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
  const carol = await TestClient.create(hs, { userId: "@carol:x", deviceId: "C" });
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" }, async () => {
    if (damage !== undefined) {
      const db = new Database(path);
      damage(db);
      db.close();
      damage = undefined;
    }
    return SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory });
  });
  await bob.machine.updateTrackedUsers(["@alice:x", "@carol:x"]);
  await bob.sync();
  const a1 = await alice.sendMessage(ROOM_A, WITH_ALICE, "a1");
  const c1 = await carol.sendMessage(ROOM_C, WITH_CAROL, "c1");
  await bob.sync();
  assert.equal((await bob.machine.decryptRoomEvent(a1, ROOM_A)).content.body, "a1");
  assert.equal((await bob.machine.decryptRoomEvent(c1, ROOM_C)).content.body, "c1");
  /** Restarts Bob with `fn` run on his database file while it is closed. */
  const restartDamaged = async (fn: (db: Database.Database) => void) => {
    damage = fn;
    await bob.restart();
  };
  const rows = (sql: string, ...params: string[]) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare(sql).all(...params) as Record<string, unknown>[];
    } finally {
      db.close();
    }
  };
  return { hs, alice, carol, bob, a1, c1, restartDamaged, rows };
}

describe("hostile input: one damaged row in the store file", () => {
  it("an Olm session row that fails authentication → skipped, deleted, reported; sync goes on; a new session", async () => {
    const w = await world();
    const aliceKey = w.alice.machine.identityKeys.curve25519;
    const [bad] = w.rows("SELECT session_id FROM olm_sessions WHERE sender_key = ?", aliceKey);
    const badId = String(bad?.session_id);
    await w.restartDamaged((db) => {
      db.prepare("UPDATE olm_sessions SET pickle = ? WHERE sender_key = ?").run("garbage", aliceKey);
    });
    // New room keys from both, Alice's on the session whose row is damaged.
    await w.alice.machine.discardRoomKey(ROOM_A);
    const a2 = await w.alice.sendMessage(ROOM_A, WITH_ALICE, "a2");
    await w.carol.machine.discardRoomKey(ROOM_C);
    const c2 = await w.carol.sendMessage(ROOM_C, WITH_CAROL, "c2");

    const synced = await w.bob.sync();
    assert.deepEqual(synced.damagedOlmSessions, [{ senderKey: aliceKey, sessionId: badId }]);
    assert.equal((await w.bob.machine.decryptRoomEvent(c2, ROOM_C)).content.body, "c2");
    assert.deepEqual(synced.failures, [{ sender: "@alice:x", code: "NO_SESSION" }]);
    // Deleted in that sync's save: not read (nor reported) again.
    assert.deepEqual(w.rows("SELECT 1 FROM olm_sessions WHERE session_id = ?", badId), []);
    assert.deepEqual((await w.bob.sync()).damagedOlmSessions, []);

    // Bob unwedged Alice's device onto a new session (its m.dummy went out in the sync's flush):
    // her next room key reaches him on it.
    await w.alice.sync();
    await w.alice.machine.discardRoomKey(ROOM_A);
    const a3 = await w.alice.sendMessage(ROOM_A, WITH_ALICE, "a3");
    const after = await w.bob.sync();
    assert.deepEqual(after.failures, []);
    assert.equal((await w.bob.machine.decryptRoomEvent(a3, ROOM_A)).content.body, "a3");
    assert.equal((await w.bob.machine.decryptRoomEvent(w.a1, ROOM_A)).content.body, "a1");
    assert.equal(w.rows("SELECT 1 FROM olm_sessions WHERE sender_key = ?", aliceKey).length, 1);
    await w.bob.machine.decryptRoomEvent(a2, ROOM_A).then(
      () => assert.fail("a2's key was on the damaged session"),
      () => undefined,
    );
  });

  it("an inbound Megolm session row that fails authentication → only that session's events fail", async () => {
    const w = await world();
    const sessionOf = (e: { content: unknown }) => (e.content as { session_id: string }).session_id;
    await w.restartDamaged((db) => {
      db.prepare("UPDATE inbound_group_sessions SET pickle = ? WHERE session_id = ?").run(
        "garbage",
        sessionOf(w.a1),
      );
    });
    // One batch with events of both rooms: only the damaged session's event fails, typed.
    const outcomes = await w.bob.machine.tryDecryptRoomEvents([
      { event: w.a1, roomId: ROOM_A },
      { event: w.c1, roomId: ROOM_C },
    ]);
    const [a1, c1] = outcomes;
    assert.equal(a1?.ok, false);
    assert.equal(a1?.ok === false && a1.error.code, "UNKNOWN_SESSION");
    assert.match(a1?.ok === false ? a1.error.message : "", /damaged/);
    assert.equal(c1?.ok === true && c1.event.content.body, "c1");
    // The same when the event is decrypted on its own.
    await assert.rejects(w.bob.machine.decryptRoomEvent(w.a1, ROOM_A), { code: "UNKNOWN_SESSION" });
    // The sync goes on, and reports the record once (IDs only).
    const synced = await w.bob.sync();
    assert.deepEqual(synced.damagedInboundSessions, [{ roomId: ROOM_A, sessionId: sessionOf(w.a1) }]);
    assert.deepEqual((await w.bob.sync()).damagedInboundSessions, []);
    const c2 = await w.carol.sendMessage(ROOM_C, WITH_CAROL, "c2");
    await w.bob.sync();
    assert.equal((await w.bob.machine.decryptRoomEvent(c2, ROOM_C)).content.body, "c2");
    // A good copy of the key (here an import) replaces the damaged row.
    await w.bob.machine.importRoomKeys(await w.alice.machine.exportRoomKeys([ROOM_A]));
    assert.equal((await w.bob.machine.decryptRoomEvent(w.a1, ROOM_A)).content.body, "a1");
    await w.bob.restart();
    assert.equal((await w.bob.machine.decryptRoomEvent(w.a1, ROOM_A)).content.body, "a1");
  });
});
