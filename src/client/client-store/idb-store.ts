// The client store in IndexedDB: the browser default, so a page reload keeps the session (access
// token, device) and the sync position. Same layout as the SQLite store: one record per room and
// per account data type, and each `saveSync` is one IndexedDB transaction. Records are validated
// when read back.
import { type IDBPDatabase, wrap } from "idb";
import { basicEventSchema } from "../../wire/index.ts";
import { ClientError } from "../errors.ts";
import {
  type ClientStore,
  checkStored,
  roomSnapshotSchema,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
  storedSessionSchema,
} from "./store.ts";

export const DEFAULT_CLIENT_IDB_NAME = "keyroom-session";
const SCHEMA_VERSION = 1;
const STORES = ["session", "sync_token", "rooms", "account_data"] as const;
const ONLY = "1";

export interface IndexedDbClientStoreOptions {
  /** Database name (one per account an app keeps signed in). Default `keyroom-session`. */
  readonly name?: string;
  /** Defaults to `globalThis.indexedDB`; pass fake-indexeddb's factory in tests. */
  readonly indexedDB?: IDBFactory;
}

export class IndexedDbClientStore implements ClientStore {
  readonly name: string;
  readonly #factory: IDBFactory | undefined;
  #db: Promise<IDBPDatabase<unknown>> | undefined;

  /** Opens the database lazily, at the first call. */
  constructor(options: IndexedDbClientStoreOptions = {}) {
    this.name = options.name ?? DEFAULT_CLIENT_IDB_NAME;
    this.#factory = options.indexedDB;
  }

  #open(): Promise<IDBPDatabase<unknown>> {
    this.#db ??= this.#connect();
    return this.#db;
  }

  async #connect(): Promise<IDBPDatabase<unknown>> {
    const factory = this.#factory ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (factory === undefined) throw new ClientError("INVALID_ARGUMENT", "IndexedDB is not available here");
    const request = factory.open(this.name, SCHEMA_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const s of STORES) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
    };
    try {
      const raw = await new Promise<IDBDatabase>((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      // Another tab upgrading or deleting the database: let it.
      raw.onversionchange = () => raw.close();
      return wrap(raw);
    } catch (e) {
      this.#db = undefined;
      if (e instanceof DOMException && e.name === "VersionError") {
        throw new ClientError(
          "STORE_CORRUPT",
          `client store "${this.name}" is newer than this version of Keyroom`,
        );
      }
      throw e;
    }
  }

  async loadSession(): Promise<StoredSession | undefined> {
    const v: unknown = await (await this.#open()).get("session", ONLY);
    return v === undefined ? undefined : checkStored(v, storedSessionSchema, "session");
  }

  async saveSession(session: StoredSession): Promise<void> {
    await (await this.#open()).put("session", { ...session }, ONLY);
  }

  async loadSync(): Promise<SyncSnapshot | undefined> {
    const db = await this.#open();
    const tx = db.transaction(["sync_token", "rooms", "account_data"]);
    const [token, rooms, accountData] = await Promise.all([
      tx.objectStore("sync_token").get(ONLY),
      tx.objectStore("rooms").getAll(),
      tx.objectStore("account_data").getAll(),
      tx.done,
    ]);
    if (token === undefined) return undefined;
    if (typeof token !== "string" || token.length === 0) {
      throw new ClientError("STORE_CORRUPT", "client store: the sync token failed validation");
    }
    return {
      nextBatch: token,
      rooms: rooms.map((r: unknown) => checkStored(r, roomSnapshotSchema, "room")),
      accountData: accountData.map((e: unknown) => checkStored(e, basicEventSchema, "account data")),
    };
  }

  async saveSync(changes: SyncChanges): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction(["sync_token", "rooms", "account_data"], "readwrite");
    const requests: Promise<unknown>[] = [];
    let refused: { error: unknown } | undefined;
    try {
      for (const r of changes.rooms) requests.push(tx.objectStore("rooms").put(r, r.roomId));
      for (const e of changes.accountData) requests.push(tx.objectStore("account_data").put(e, e.type));
      requests.push(tx.objectStore("sync_token").put(changes.nextBatch, ONLY));
    } catch (error) {
      // A request refused as it was made (a value IndexedDB cannot hold; in Chromium, a room
      // snapshot past its value size limit aborts the transaction, and the next request throws):
      // the requests made before it must not commit without the token.
      refused = { error };
      try {
        tx.abort();
      } catch {
        // Already aborted.
      }
    }
    // The transaction's end is the outcome: a request Chromium refused may never settle, and
    // the others fail with it (handled here, so that none rejects unhandled).
    for (const r of requests) r.catch(() => undefined);
    try {
      await tx.done;
    } catch (e) {
      // The transaction's own error says why (e.g. Chromium's "value too large"); an abort of ours has none.
      throw tx.error ?? refused?.error ?? e;
    }
    if (refused !== undefined) throw refused.error;
  }

  async clear(): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction([...STORES], "readwrite");
    await Promise.all([...STORES.map((s) => tx.objectStore(s).clear()), tx.done]);
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    if (db !== undefined) (await db.catch(() => undefined))?.close();
  }

  toJSON(): Record<string, unknown> {
    return { type: "IndexedDbClientStore", name: this.name };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `IndexedDbClientStore(${this.name})`;
  }
}
