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
  /** Removes what the back end left behind. */
  cleanUp(): void;
}

let n = 0;

function memory(): DamageableBackEnd {
  const data = new MemoryStoreData();
  return {
    name: "memory",
    sealed: false,
    open: () => MemoryCryptoStore.open({ userId: USER, deviceId: DEVICE, data }),
    async damage(roomId, sessionId) {
      const key = JSON.stringify([roomId, sessionId]);
      const r = data.inbound.get(key);
      if (r === undefined) throw new Error("no such session");
      data.inbound.set(key, { ...r, pickle: { ...r.pickle, ratchet: "AAAA" } });
    },
    cleanUp() {},
  };
}

function sqlite(): DamageableBackEnd {
  const directory = mkdtempSync(join(tmpdir(), "keyroom-damaged-inbound-"));
  return {
    name: "SQLite",
    sealed: true,
    open: () => SqliteCryptoStore.open({ userId: USER, deviceId: DEVICE, directory }),
    async damage(roomId, sessionId) {
      const db = new Database(join(directory, DEFAULT_SQLITE_FILE_NAME));
      try {
        const changed = db
          .prepare("UPDATE inbound_group_sessions SET pickle = ? WHERE room_id = ? AND session_id = ?")
          .run("garbage", roomId, sessionId).changes;
        if (changed !== 1) throw new Error("no such session");
      } finally {
        db.close();
      }
    },
    cleanUp: () => rmSync(directory, { recursive: true, force: true }),
  };
}

function indexedDb(): DamageableBackEnd {
  const name = `keyroom-damaged-inbound-${process.pid}-${n++}`;
  return {
    name: "IndexedDB",
    sealed: true,
    open: () => IndexedDbCryptoStore.open({ userId: USER, deviceId: DEVICE, name }),
    async damage(roomId, sessionId) {
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
        store.put({ ...row, pickle: "garbage" });
        await done;
      } finally {
        db.close();
      }
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
