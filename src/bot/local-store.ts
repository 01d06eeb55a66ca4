// What a bot keeps on its own disk besides the client's stores: the events it has handled (so a
// restart after a crash answers nothing twice) and an optional key-value table for data too large
// for account data. SQLite (better-sqlite3, loaded on open) or memory.
import { chmod, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";

/** Handled event IDs kept for dedupe; the oldest are forgotten past this (redelivery is recent). */
export const MAX_HANDLED_EVENTS = 20_000;
/** Largest value `LocalStore.set` accepts (JSON text), so one skill cannot fill the disk at once. */
export const MAX_LOCAL_VALUE_BYTES = 16 * 1024 * 1024;

export interface LocalStore {
  isHandled(eventId: string): boolean;
  markHandled(eventId: string): void;
  /** A JSON value stored under `key`, or undefined. */
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): void;
  delete(key: string): void;
  close(): void;
}

function checkSize(json: string): void {
  if (Buffer.byteLength(json) > MAX_LOCAL_VALUE_BYTES) {
    throw new RangeError(`local store value larger than ${MAX_LOCAL_VALUE_BYTES} bytes`);
  }
}

export class MemoryLocalStore implements LocalStore {
  readonly #handled = new Set<string>();
  readonly #kv = new Map<string, string>();
  isHandled(eventId: string): boolean {
    return this.#handled.has(eventId);
  }
  markHandled(eventId: string): void {
    this.#handled.add(eventId);
    // A Set iterates in insertion order: the first entries are the oldest.
    for (const id of this.#handled) {
      if (this.#handled.size <= MAX_HANDLED_EVENTS) break;
      this.#handled.delete(id);
    }
  }
  get<T>(key: string): T | undefined {
    const v = this.#kv.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  set(key: string, value: unknown): void {
    const json = JSON.stringify(value);
    checkSize(json);
    this.#kv.set(key, json);
  }
  delete(key: string): void {
    this.#kv.delete(key);
  }
  close(): void {}
}

export class SqliteLocalStore implements LocalStore {
  readonly #db: BetterSqlite3.Database;
  #inserts = 0;
  /**
   * The per-event statements, prepared once: each command checks and marks its event, and
   * compiling the two statements each time cost more than running them.
   */
  readonly #isHandled: BetterSqlite3.Statement<[string]>;
  readonly #markHandled: BetterSqlite3.Statement<[string]>;
  private constructor(db: BetterSqlite3.Database) {
    this.#db = db;
    this.#isHandled = db.prepare("SELECT 1 FROM handled WHERE event_id = ?");
    this.#markHandled = db.prepare("INSERT OR IGNORE INTO handled (event_id) VALUES (?)");
  }

  static async open(path: string): Promise<SqliteLocalStore> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(path);
    await chmod(path, 0o600);
    db.pragma("journal_mode = WAL");
    // NORMAL: a process crash (SIGKILL) loses nothing in WAL mode; a power loss may lose the last
    // marks, and then the events are handled again with the same transaction IDs (no second answer).
    db.pragma("synchronous = NORMAL");
    db.exec(`CREATE TABLE IF NOT EXISTS handled (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL);
             CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, json TEXT NOT NULL);`);
    return new SqliteLocalStore(db);
  }

  isHandled(eventId: string): boolean {
    return this.#isHandled.get(eventId) !== undefined;
  }
  markHandled(eventId: string): void {
    this.#markHandled.run(eventId);
    // Pruned now and then, not on every insert.
    if (++this.#inserts % 500 === 0) {
      this.#db
        .prepare("DELETE FROM handled WHERE seq <= (SELECT MAX(seq) FROM handled) - ?")
        .run(MAX_HANDLED_EVENTS);
    }
  }
  get<T>(key: string): T | undefined {
    const row = this.#db.prepare("SELECT json FROM kv WHERE key = ?").get(key) as
      | { json: string }
      | undefined;
    return row === undefined ? undefined : (JSON.parse(row.json) as T);
  }
  set(key: string, value: unknown): void {
    const json = JSON.stringify(value);
    checkSize(json);
    this.#db
      .prepare("INSERT INTO kv (key, json) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET json = excluded.json")
      .run(key, json);
  }
  delete(key: string): void {
    this.#db.prepare("DELETE FROM kv WHERE key = ?").run(key);
  }
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
