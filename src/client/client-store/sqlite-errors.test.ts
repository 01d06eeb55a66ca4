// The SQLite client store when SQLite fails: its connection closed underneath it, a database that
// refuses writes (read-only, full, locked by another connection), a damaged file. Each is a
// ClientError (STORE_CLOSED, STORE_FAILED or STORE_CORRUPT) with SQLite's error as cause, its code
// named but no record contents or token in the message; a failed save saves nothing.
import assert from "node:assert/strict";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { ClientError, type ClientErrorCode } from "../errors.ts";
import { namedRoom } from "../test-support/room-state.ts";
import { SqliteClientStore } from "./sqlite-store.ts";
import type { RoomSnapshot, StoredSession, SyncChanges } from "./store.ts";

const dir = await mkdtemp(join(tmpdir(), "keyroom-client-sqlite-errors-"));
after(() => rm(dir, { recursive: true, force: true }));

/** In the token and in a room: must never reach an error's message. */
const SECRET = "secret-token-or-record";
const session: StoredSession = {
  homeserverUrl: "https://hs",
  userId: "@a:hs",
  deviceId: "DEV",
  accessToken: SECRET,
};

/** A room whose name holds `SECRET` (and `size` more characters). */
const room = (roomId: string, size = 1): RoomSnapshot => namedRoom(roomId, `${SECRET}${"x".repeat(size)}`);

const changes = (nextBatch: string, rooms: RoomSnapshot[] = [room("!r:hs")]): SyncChanges => ({
  nextBatch,
  rooms,
  accountData: [],
});

let n = 0;
async function openStore() {
  const path = join(dir, `client-${n++}.sqlite3`);
  const store = await SqliteClientStore.open(path);
  await store.saveSession(session);
  await store.saveSync(changes("s1"));
  /** The store's own connection (a private field): to fail it underneath the store. */
  const db = (store as unknown as { db: Database.Database }).db;
  return { store, db, path };
}

async function refused(
  work: Promise<unknown>,
  code: ClientErrorCode,
  causeCode?: string,
): Promise<ClientError> {
  let error: unknown;
  await work.then(
    () => assert.fail("expected a failure"),
    (e: unknown) => {
      error = e;
    },
  );
  assert.ok(error instanceof ClientError, `a ClientError, not ${String(error)}`);
  assert.equal(error.code, code, error.message);
  assert.ok(error.cause !== undefined, "the original error as cause");
  if (causeCode !== undefined) {
    assert.equal((error.cause as { code?: unknown }).code, causeCode);
    assert.ok(error.message.includes(causeCode), `names ${causeCode}: ${error.message}`);
  }
  assert.ok(!error.message.includes(SECRET), error.message);
  const causeMessage = (error.cause as Error).message;
  if (causeMessage.length > 0) assert.ok(!error.message.includes(causeMessage), error.message);
  return error;
}

describe("SqliteClientStore failures", () => {
  it("a connection closed underneath the store: every call is STORE_CLOSED", async () => {
    const { store, db } = await openStore();
    db.close();
    await refused(store.loadSession(), "STORE_CLOSED");
    await refused(store.loadSync(), "STORE_CLOSED");
    await refused(store.saveSession(session), "STORE_CLOSED");
    await refused(
      store.saveSessionIf(session, () => true),
      "STORE_CLOSED",
    );
    await refused(store.saveSync(changes("s2")), "STORE_CLOSED");
    await refused(store.clear(), "STORE_CLOSED");
    await refused(
      store.clearIf(() => true),
      "STORE_CLOSED",
    );
    await store.close();
  });

  it("used after close(): STORE_CLOSED", async () => {
    const { store } = await openStore();
    await store.close();
    await refused(store.loadSync(), "STORE_CLOSED");
    await refused(store.saveSync(changes("s2")), "STORE_CLOSED");
  });

  it("a database that refuses writes (read-only): STORE_FAILED, nothing saved", async () => {
    const { store, db } = await openStore();
    db.pragma("query_only = ON"); // writes fail with SQLITE_READONLY, as on a read-only file
    await refused(
      store.saveSync(changes("s2", [room("!r:hs"), room("!s:hs")])),
      "STORE_FAILED",
      "SQLITE_READONLY",
    );
    await refused(
      store.saveSession({ ...session, accessToken: `${SECRET}2` }),
      "STORE_FAILED",
      "SQLITE_READONLY",
    );
    await refused(store.clear(), "STORE_FAILED", "SQLITE_READONLY");
    db.pragma("query_only = OFF");
    const saved = await store.loadSync();
    assert.equal(saved?.nextBatch, "s1");
    assert.deepEqual(
      saved?.rooms.map((r) => r.roomId),
      ["!r:hs"],
    );
    assert.deepEqual(await store.loadSession(), session);
    await store.close();
  });

  it("a full disk: STORE_FAILED, the save rolled back whole", async () => {
    const { store, db } = await openStore();
    const pages = db.pragma("page_count", { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    const big = Array.from({ length: 20 }, (_, i) => room(`!big${i}:hs`, 4096));
    await refused(store.saveSync(changes("s2", big)), "STORE_FAILED", "SQLITE_FULL");
    const saved = await store.loadSync();
    assert.equal(saved?.nextBatch, "s1", "the position not saved without its rooms");
    assert.deepEqual(
      saved?.rooms.map((r) => r.roomId),
      ["!r:hs"],
    );
    await store.close();
  });

  it("locked by another connection: STORE_FAILED (SQLITE_BUSY)", async () => {
    const { store, db, path } = await openStore();
    db.pragma("busy_timeout = 0"); // refused at once rather than after the default wait
    const other = new Database(path);
    try {
      other.exec("BEGIN IMMEDIATE");
      await refused(store.saveSync(changes("s2")), "STORE_FAILED", "SQLITE_BUSY");
      await refused(
        store.clearIf(() => true),
        "STORE_FAILED",
        "SQLITE_BUSY",
      );
      other.exec("ROLLBACK");
    } finally {
      other.close();
    }
    assert.equal((await store.loadSync())?.nextBatch, "s1");
    await store.close();
  });

  it("a file that is not a database: opening it is STORE_CORRUPT", async () => {
    const path = join(dir, "garbage.sqlite3");
    await writeFile(path, Buffer.alloc(8192, 0x5a));
    await refused(SqliteClientStore.open(path), "STORE_CORRUPT", "SQLITE_NOTADB");
  });

  it("a damaged page: reading it is STORE_CORRUPT", async () => {
    const { store, db, path } = await openStore();
    const rooms = Array.from({ length: 50 }, (_, i) => room(`!room${i}:hs`, 2000));
    await store.saveSync(changes("s2", rooms));
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    const pages = db.pragma("page_count", { simple: true }) as number;
    await store.close(); // checkpointed: the file holds every page
    // Every page from the third on (the rooms table's among them) overwritten with garbage.
    const file = await open(path, "r+");
    try {
      for (let p = 2; p < pages; p++)
        await file.write(Buffer.alloc(pageSize, 0xa5), 0, pageSize, p * pageSize);
    } finally {
      await file.close();
    }
    const damaged = await SqliteClientStore.open(path);
    try {
      await refused(damaged.loadSync(), "STORE_CORRUPT", "SQLITE_CORRUPT");
    } finally {
      await damaged.close();
    }
  });
});
