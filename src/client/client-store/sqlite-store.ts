// A client store in SQLite (Node, better-sqlite3): one row per room, so a sync that touched two
// rooms writes two rows instead of rewriting everything, and the room's state in a row of its own
// (`room_state`), written only when it changed (`#saveSync`), so a message in a room of thousands
// of members does not write them all again. Each `saveSync` is one transaction. The database holds
// the access token: the file is created with mode 0600.
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
import { randomUUID } from "node:crypto";
import { chmod, mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { basicEventSchema, type StateEvent } from "../../wire/index.ts";
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

/**
 * 1: `rooms` held whole snapshots. 2: a room's state (the snapshot's `state`, as JSON) in
 * `room_state` with its revision, the `rooms` row without it.
 */
const SCHEMA_VERSION = 2;

/** What migration 2 gives the state rows it makes: no store wrote it (so none skips writing over it). */
const MIGRATED_REV = "migrated";

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
   CREATE TABLE sync_token (id INTEGER PRIMARY KEY CHECK (id = 1), next_batch TEXT NOT NULL);
   CREATE TABLE rooms (room_id TEXT PRIMARY KEY, json TEXT NOT NULL);
   CREATE TABLE account_data (type TEXT PRIMARY KEY, json TEXT NOT NULL);`,
  // A row that is not JSON with an array `state` stays whole: it loads (or fails validation) as
  // before, and the room's next save writes it in the new layout.
  `CREATE TABLE room_state (room_id TEXT PRIMARY KEY, rev TEXT NOT NULL, json TEXT NOT NULL);
   INSERT INTO room_state (room_id, rev, json)
     SELECT room_id, '${MIGRATED_REV}', json_extract(json, '$.state') FROM rooms
     WHERE json_valid(json) AND json_type(json, '$.state') = 'array';
   UPDATE rooms SET json = json_remove(json, '$.state')
     WHERE room_id IN (SELECT room_id FROM room_state);`,
];

/**
 * What this connection last wrote or read of a room's state: the events (the client's frozen
 * array, or this store's copy of what it read) and the revision it stored them under.
 */
interface KnownState {
  readonly events: readonly StateEvent[];
  readonly rev: string;
}

/**
 * Whether `events` (a new snapshot's state) is what `known` holds: the same array, or, frozen (the
 * client's: `RoomSnapshot.state`), the same event objects in the same order (the client replaces a
 * state event, never changes one), as after a restart, when the rooms were made of what was read.
 */
function sameState(known: KnownState | undefined, events: readonly StateEvent[]): boolean {
  if (known === undefined || !Object.isFrozen(events)) return false;
  if (known.events === events) return true;
  if (known.events.length !== events.length) return false;
  for (let i = 0; i < events.length; i++) if (known.events[i] !== events[i]) return false;
  return true;
}

/** Parts of a room read apart, checked together (`roomSnapshotSchema`) once put together. */
const anyJson = { safeParse: (v: unknown) => ({ success: true as const, data: v }) };

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
  readonly #saveSync: BetterSqlite3.Transaction<(changes: SyncChanges) => Map<string, KnownState>>;
  /**
   * Per room, the state this connection last wrote or read and its revision. A save skips the
   * room's state when it is that state (`sameState`) and `room_state` still holds that revision:
   * another process (or store) sharing the file that wrote the room's state since left another
   * one, and the state is then written whole, never the room's other fields with older state.
   */
  readonly #known = new Map<string, KnownState>();
  /** Revisions are this connection's ID and a count: no other writer makes the same one. */
  readonly #revPrefix = randomUUID();
  #revCount = 0;

  private constructor(
    private readonly db: BetterSqlite3.Database,
    readonly path: string,
  ) {
    const putRoom = db.prepare(
      "INSERT INTO rooms (room_id, json) VALUES (?, ?) ON CONFLICT(room_id) DO UPDATE SET json = excluded.json",
    );
    const revOf = db.prepare("SELECT rev FROM room_state WHERE room_id = ?").pluck();
    const putState = db.prepare(
      "INSERT INTO room_state (room_id, rev, json) VALUES (?, ?, ?) ON CONFLICT(room_id) DO UPDATE SET rev = excluded.rev, json = excluded.json",
    );
    const putData = db.prepare(
      "INSERT INTO account_data (type, json) VALUES (?, ?) ON CONFLICT(type) DO UPDATE SET json = excluded.json",
    );
    const deleteRoom = db.prepare("DELETE FROM rooms WHERE room_id = ?");
    const deleteState = db.prepare("DELETE FROM room_state WHERE room_id = ?");
    const putToken = db.prepare("INSERT OR REPLACE INTO sync_token (id, next_batch) VALUES (1, ?)");
    // Returns what it wrote of rooms' state, taken as known once the transaction committed.
    this.#saveSync = db.transaction((changes: SyncChanges) => {
      const wrote = new Map<string, KnownState>();
      for (const r of changes.rooms) {
        const { state: events, ...rest } = r;
        putRoom.run(r.roomId, JSON.stringify(rest));
        const known = this.#known.get(r.roomId);
        if (known !== undefined && sameState(known, events) && revOf.get(r.roomId) === known.rev) {
          wrote.set(r.roomId, { events, rev: known.rev });
          continue;
        }
        const rev = `${this.#revPrefix}.${++this.#revCount}`;
        putState.run(r.roomId, rev, JSON.stringify(events));
        // A copy of an array that may change (not the client's, which is frozen).
        wrote.set(r.roomId, { events: Object.isFrozen(events) ? events : [...events], rev });
      }
      for (const roomId of changes.forgotten ?? []) {
        deleteRoom.run(roomId);
        deleteState.run(roomId);
      }
      for (const e of changes.accountData) putData.run(e.type, JSON.stringify(e));
      putToken.run(changes.nextBatch);
      return wrote;
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
    const rows = this.db
      .prepare(
        `SELECT rooms.json AS room, room_state.rev AS rev, room_state.json AS state
         FROM rooms LEFT JOIN room_state USING (room_id) ORDER BY rooms.rowid`,
      )
      .all() as { room: string; rev: string | null; state: string | null }[];
    this.#known.clear();
    const rooms = rows.map((r): RoomSnapshot => {
      // Without a state row: a snapshot kept whole (migration 2 left it), read as before.
      if (r.rev === null || r.state === null) return parseJson(r.room, roomSnapshotSchema, "room");
      const fields = parseJson(r.room, anyJson, "room");
      const state = parseJson(r.state, anyJson, "room state");
      if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
        throw new ClientError("STORE_CORRUPT", "client store: room failed validation");
      }
      const room = checkStored({ ...fields, state }, roomSnapshotSchema, "room");
      this.#known.set(room.roomId, { events: [...room.state], rev: r.rev });
      return room;
    });
    const accountData = (
      this.db.prepare("SELECT json FROM account_data ORDER BY rowid").all() as { json: string }[]
    ).map((r) => parseJson(r.json, basicEventSchema, "account data"));
    return { nextBatch: tok.next_batch, rooms, accountData };
  }

  /**
   * Immediate: the write lock is taken before the revisions are read, so no other writer comes
   * between the check and the write.
   */
  async saveSync(changes: SyncChanges): Promise<void> {
    const wrote = this.#run("saving to", () => this.#saveSync.immediate(changes));
    for (const roomId of changes.forgotten ?? []) this.#known.delete(roomId);
    for (const [roomId, known] of wrote) this.#known.set(roomId, known);
  }

  async clear(): Promise<void> {
    this.#run("clearing", () => this.synced(() => this.db.transaction(() => this.#clear())()));
  }

  #clear(): void {
    for (const t of ["session", "sync_token", "rooms", "room_state", "account_data"]) {
      this.db.exec(`DELETE FROM ${t}`);
    }
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
