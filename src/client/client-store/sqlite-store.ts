// A client store in SQLite (Node, better-sqlite3): one row per room, so a sync that touched two
// rooms writes two rows instead of rewriting everything. Each `saveSync` is one transaction. The
// database holds the access token: the file is created with mode 0600.
//
// Durability: WAL, so every commit survives the process being killed. The session (the device) is
// synced to the disk before `saveSession` returns; sync saves are not (`synchronous = NORMAL`, one
// fsync less per sync response): a power loss may drop the last ones together with their rooms,
// and the client then syncs again from an older position. That is safe because the crypto store
// commits what a response brought (synced) before its position is saved here, so that state is
// never behind the position; the events of the dropped range come again. better-sqlite3 is loaded
// only when a store is opened, so importing `keyroom` does not load a native module.
//
// Failures are typed as the IndexedDB client store's are: a store used once its connection is
// closed is `ClientError` `STORE_CLOSED`, a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB)
// `STORE_CORRUPT`, anything else SQLite or the file system refused (busy, full, read-only, I/O)
// `STORE_FAILED`; the original error is the `cause`, its code named in the message but its message
// never quoted. Every write is one transaction, so a failed save or clear changes nothing.
import { chmod, mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { basicEventSchema } from "../../wire/index.ts";
import { ClientError } from "../errors.ts";
import {
  type ClientStore,
  checkStored,
  type RoomSnapshot,
  roomSnapshotSchema,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
  storedSessionSchema,
} from "./store.ts";

const SCHEMA_VERSION = 1;

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
   CREATE TABLE sync_token (id INTEGER PRIMARY KEY CHECK (id = 1), next_batch TEXT NOT NULL);
   CREATE TABLE rooms (room_id TEXT PRIMARY KEY, json TEXT NOT NULL);
   CREATE TABLE account_data (type TEXT PRIMARY KEY, json TEXT NOT NULL);`,
];

function parseJson<T>(
  text: string,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  what: string,
): T {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ClientError("STORE_CORRUPT", `client store: ${what} is not JSON`);
  }
  return checkStored(v, schema, what);
}

/** SQLite's or the file system's code of `e` (e.g. `SQLITE_FULL`, `EACCES`), if it has one. */
function codeOf(e: unknown): string | undefined {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === "string" && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : undefined;
}

/**
 * `e`, thrown while `what` (e.g. `saving to client store "x"`): the client's own errors pass
 * through; with the connection closed it is `STORE_CLOSED`, a damaged file `STORE_CORRUPT`, the
 * rest `STORE_FAILED`, `e` as the cause. The message names SQLite's code, never quotes `e`'s message
 * (it may hold a statement's values).
 */
function sqliteClientStoreError(e: unknown, what: string, open: boolean): Error {
  if (e instanceof ClientError) return e;
  const code = codeOf(e);
  const named = code ?? (e instanceof Error ? e.name : "unknown error");
  if (!open) {
    return new ClientError("STORE_CLOSED", `${what}: the store's connection is closed`, { cause: e });
  }
  if (code !== undefined && (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB")) {
    return new ClientError("STORE_CORRUPT", `${what}: the database file is damaged (${named})`, {
      cause: e,
    });
  }
  return new ClientError("STORE_FAILED", `${what} failed (${named})`, { cause: e });
}

export class SqliteClientStore implements ClientStore {
  /**
   * `saveSync`'s transaction, its statements prepared once: it runs for every sync response, and
   * compiling its statements and a transaction wrapper each time was a visible part of a bot's
   * CPU per command (bench/README.md, bots section).
   */
  readonly #saveSync: BetterSqlite3.Transaction<(changes: SyncChanges) => void>;

  private constructor(
    private readonly db: BetterSqlite3.Database,
    readonly path: string,
  ) {
    const putRoom = db.prepare(
      "INSERT INTO rooms (room_id, json) VALUES (?, ?) ON CONFLICT(room_id) DO UPDATE SET json = excluded.json",
    );
    const putData = db.prepare(
      "INSERT INTO account_data (type, json) VALUES (?, ?) ON CONFLICT(type) DO UPDATE SET json = excluded.json",
    );
    const deleteRoom = db.prepare("DELETE FROM rooms WHERE room_id = ?");
    const putToken = db.prepare("INSERT OR REPLACE INTO sync_token (id, next_batch) VALUES (1, ?)");
    this.#saveSync = db.transaction((changes: SyncChanges) => {
      for (const r of changes.rooms) putRoom.run(r.roomId, JSON.stringify(r));
      for (const roomId of changes.forgotten ?? []) deleteRoom.run(roomId);
      for (const e of changes.accountData) putData.run(e.type, JSON.stringify(e));
      putToken.run(changes.nextBatch);
    });
  }

  /** Opens (creating and migrating) the database at `path`; `":memory:"` for a throwaway one. */
  static async open(path: string): Promise<SqliteClientStore> {
    const { default: Database } = await import("better-sqlite3");
    const what = `opening client store ${path} (SQLite)`;
    let db: BetterSqlite3.Database;
    try {
      if (path !== ":memory:") {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        // Create the file 0600 before SQLite does: its WAL and shm files copy the database's mode.
        await (await open(path, "a", 0o600)).close();
        await chmod(path, 0o600);
      }
      db = new Database(path);
    } catch (e) {
      throw sqliteClientStoreError(e, what, true);
    }
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new ClientError(
          "STORE_CORRUPT",
          `client store schema ${version} is newer than this version of Keyroom`,
        );
      }
      // Under the write lock, from the version read again: another process opening the same new
      // file may have migrated it since the check above.
      db.transaction(() => {
        const now = db.pragma("user_version", { simple: true }) as number;
        for (let v = now; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
        if (now < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
      return new SqliteClientStore(db, path);
    } catch (e) {
      db.close();
      throw sqliteClientStoreError(e, what, true);
    }
  }

  /** `body`, its failures typed (`sqliteClientStoreError`). */
  #run<T>(what: "reading" | "saving to" | "clearing", body: () => T): T {
    try {
      return body();
    } catch (e) {
      const nothing = { reading: "", "saving to": "; nothing was saved", clearing: "; nothing was cleared" };
      throw sqliteClientStoreError(
        e,
        `${what} client store ${this.path} (SQLite${nothing[what]})`,
        this.db.open,
      );
    }
  }

  async loadSession(): Promise<StoredSession | undefined> {
    return this.#run("reading", () => this.#session());
  }

  #session(): StoredSession | undefined {
    const row = this.db.prepare("SELECT json FROM session WHERE id = 1").get() as
      | { json: string }
      | undefined;
    return row ? parseJson(row.json, storedSessionSchema, "session") : undefined;
  }

  async saveSession(session: StoredSession): Promise<void> {
    this.#run("saving to", () => this.synced(() => this.#putSession(session)));
  }

  #putSession(session: StoredSession): void {
    this.db.prepare("INSERT OR REPLACE INTO session (id, json) VALUES (1, ?)").run(JSON.stringify(session));
  }

  /** One immediate transaction: another process's login or save falls wholly before or after it. */
  async saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    let saved = false;
    this.#run("saving to", () =>
      this.synced(() =>
        this.db
          .transaction(() => {
            const stored = this.#session();
            if (!expected(stored)) return;
            if (stored && (stored.userId !== session.userId || stored.deviceId !== session.deviceId)) {
              this.#clear();
            }
            this.#putSession(session);
            saved = true;
          })
          .immediate(),
      ),
    );
    return saved;
  }

  /** Runs `write` as a commit synced to the disk (its sync covers the unsynced commits before it). */
  private synced(write: () => void): void {
    this.db.pragma("synchronous = FULL");
    try {
      write();
    } finally {
      this.db.pragma("synchronous = NORMAL");
    }
  }

  async loadSync(): Promise<SyncSnapshot | undefined> {
    return this.#run("reading", () => this.#loadSync());
  }

  #loadSync(): SyncSnapshot | undefined {
    const tok = this.db.prepare("SELECT next_batch FROM sync_token WHERE id = 1").get() as
      | { next_batch: string }
      | undefined;
    if (!tok) return undefined;
    const rooms = (this.db.prepare("SELECT json FROM rooms ORDER BY rowid").all() as { json: string }[]).map(
      (r): RoomSnapshot => parseJson(r.json, roomSnapshotSchema, "room"),
    );
    const accountData = (
      this.db.prepare("SELECT json FROM account_data ORDER BY rowid").all() as { json: string }[]
    ).map((r) => parseJson(r.json, basicEventSchema, "account data"));
    return { nextBatch: tok.next_batch, rooms, accountData };
  }

  async saveSync(changes: SyncChanges): Promise<void> {
    this.#run("saving to", () => this.#saveSync(changes));
  }

  async clear(): Promise<void> {
    this.#run("clearing", () => this.synced(() => this.db.transaction(() => this.#clear())()));
  }

  #clear(): void {
    for (const t of ["session", "sync_token", "rooms", "account_data"]) this.db.exec(`DELETE FROM ${t}`);
  }

  /** One immediate transaction: another process's save falls wholly before or after it. */
  async clearIf(ours: (stored: StoredSession | undefined) => boolean): Promise<boolean> {
    let cleared = false;
    this.#run("clearing", () =>
      this.synced(() =>
        this.db
          .transaction(() => {
            cleared = ours(this.#session());
            if (cleared) this.#clear();
          })
          .immediate(),
      ),
    );
    return cleared;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  toJSON(): Record<string, unknown> {
    return { type: "SqliteClientStore", path: this.path };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `SqliteClientStore(${this.path})`;
  }
}
