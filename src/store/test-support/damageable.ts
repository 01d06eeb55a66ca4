// The three store back ends, each with a way to damage one inbound Megolm session row while the
// store is closed, for tests of what the engine does with such a row. SQLite and IndexedDB: the
// row's sealed pickle replaced (it fails authentication, `TAMPERED`). Memory (nothing is sealed):
// the record's pickle does not unpickle, the nearest a memory store comes to a damaged row.
// IndexedDB runs on fake-indexeddb: import "fake-indexeddb/auto" first in the test file.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { type CryptoStore, MemoryCryptoStore, MemoryStoreData } from "../index.ts";
import { IndexedDbCryptoStore } from "../indexeddb/idb-store.ts";
import { requestToPromise } from "../indexeddb/ordered.ts";
import type { InboundGroupSessionRecord } from "../records.ts";
import { DEFAULT_SQLITE_FILE_NAME, SqliteCryptoStore } from "../sqlite/sqlite-store.ts";

export const USER = "@a:example.org";
export const DEVICE = "A";

export interface DamageableBackEnd {
  readonly name: string;
  /** Whether the store itself finds the row damaged (it is then reported as such). */
  readonly sealed: boolean;
  /** Opens the store (the same one on every call). */
  open(): Promise<CryptoStore>;
  /** Damages the stored row of this session; the store must be closed. */
  damage(roomId: string, sessionId: string): Promise<void>;
  /**
   * Puts back the row as it was before `damage` (a row that only looked damaged through a bug
   * reads again once the bug is fixed); the store must be closed.
   */
  repair(roomId: string, sessionId: string): Promise<void>;
  /** Removes what the back end left behind. */
  cleanUp(): void;
}

let n = 0;

function memory(): DamageableBackEnd {
  const data = new MemoryStoreData();
  const originals = new Map<string, InboundGroupSessionRecord>();
  return {
    name: "memory",
    sealed: false,
    open: () => MemoryCryptoStore.open({ userId: USER, deviceId: DEVICE, data }),
    async damage(roomId, sessionId) {
      const key = JSON.stringify([roomId, sessionId]);
      const r = data.inbound.get(key);
      if (r === undefined) throw new Error("no such session");
      originals.set(key, r);
      data.inbound.set(key, { ...r, pickle: { ...r.pickle, ratchet: "AAAA" } });
    },
    async repair(roomId, sessionId) {
      const key = JSON.stringify([roomId, sessionId]);
      const r = originals.get(key);
      const now = data.inbound.get(key);
      if (r === undefined || now === undefined) throw new Error("not damaged");
      // The pickle only: what was written since (a backed-up mark) stays.
      data.inbound.set(key, { ...now, pickle: r.pickle });
    },
    cleanUp() {},
  };
}

function sqlite(): DamageableBackEnd {
  const directory = mkdtempSync(join(tmpdir(), "keyroom-damaged-inbound-"));
  const originals = new Map<string, unknown>();
  return {
    name: "SQLite",
    sealed: true,
    open: () => SqliteCryptoStore.open({ userId: USER, deviceId: DEVICE, directory }),
    async damage(roomId, sessionId) {
      const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
      try {
        const row = db
          .prepare("SELECT pickle FROM inbound_group_sessions WHERE room_id = ? AND session_id = ?")
          .get(roomId, sessionId) as { pickle: unknown } | undefined;
        if (row === undefined) throw new Error("no such session");
        originals.set(JSON.stringify([roomId, sessionId]), row.pickle);
        db.prepare("UPDATE inbound_group_sessions SET pickle = ? WHERE room_id = ? AND session_id = ?").run(
          "garbage",
          roomId,
          sessionId,
        );
      } finally {
        db.close();
      }
    },
    async repair(roomId, sessionId) {
      const pickle = originals.get(JSON.stringify([roomId, sessionId]));
      if (pickle === undefined) throw new Error("not damaged");
      const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
      try {
        db.prepare("UPDATE inbound_group_sessions SET pickle = ? WHERE room_id = ? AND session_id = ?").run(
          pickle,
          roomId,
          sessionId,
        );
      } finally {
        db.close();
      }
    },
    cleanUp: () => rmSync(directory, { recursive: true, force: true }),
  };
}

/**
 * Rewrites one inbound session row of the closed IndexedDB store `name`: `change` gets the row as
 * stored and returns the row to put in its place.
 */
async function rewriteInboundRow(
  name: string,
  roomId: string,
  sessionId: string,
  change: (row: object) => object,
): Promise<void> {
  const db = await requestToPromise(indexedDB.open(name));
  try {
    const tx = db.transaction("inbound_group_sessions", "readwrite");
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onabort = () => reject(tx.error);
    });
    const store = tx.objectStore("inbound_group_sessions");
    const row: unknown = await requestToPromise(store.get([roomId, sessionId]));
    if (typeof row !== "object" || row === null) throw new Error("no such session");
    store.put(change(row));
    await done;
  } finally {
    db.close();
  }
}

function indexedDb(): DamageableBackEnd {
  const name = `keyroom-damaged-inbound-${process.pid}-${n++}`;
  const originals = new Map<string, object>();
  return {
    name: "IndexedDB",
    sealed: true,
    open: () => IndexedDbCryptoStore.open({ userId: USER, deviceId: DEVICE, name }),
    damage: (roomId, sessionId) =>
      rewriteInboundRow(name, roomId, sessionId, (row) => {
        originals.set(JSON.stringify([roomId, sessionId]), row);
        return { ...row, pickle: "garbage" };
      }),
    async repair(roomId, sessionId) {
      const row = originals.get(JSON.stringify([roomId, sessionId]));
      if (row === undefined) throw new Error("not damaged");
      // The sealed pickle only: what was written since (a backed-up mark) stays.
      await rewriteInboundRow(name, roomId, sessionId, (now) => ({
        ...now,
        pickle: (row as { pickle?: unknown }).pickle,
      }));
    },
    cleanUp() {},
  };
}

/** Each back end, by name: `make` gives a new store of it. */
export const DAMAGEABLE_BACK_ENDS: readonly {
  readonly name: string;
  readonly make: () => DamageableBackEnd;
}[] = [
  { name: "memory", make: memory },
  { name: "SQLite", make: sqlite },
  { name: "IndexedDB", make: indexedDb },
];
