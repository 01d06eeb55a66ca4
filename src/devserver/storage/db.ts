// Opens the devserver's SQLite database (a file, or `:memory:`) and brings its schema up to date.
import Database from "better-sqlite3";
import { MIGRATIONS } from "./migrations.ts";

export type Db = Database.Database;

export class StorageError extends Error {
  override readonly name = "StorageError";
  readonly code: "SCHEMA_TOO_NEW";
  constructor(code: "SCHEMA_TOO_NEW", message: string) {
    super(message);
    this.code = code;
  }
}

export function openDatabase(path: string): Db {
  const db = new Database(path);
  if (path !== ":memory:") {
    // WAL keeps readers and the single writer from blocking each other and survives a crash.
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
  }
  db.pragma("foreign_keys = ON");
  try {
    migrate(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new StorageError(
      "SCHEMA_TOO_NEW",
      `database schema version ${current} is newer than this devserver (${MIGRATIONS.length})`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    const sql = MIGRATIONS[v]!;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * The server-wide stream counter. Every persisted change that sync reports (events, to-device
 * messages, device-list changes, account data, receipts) takes the next position, so one integer
 * orders them all. Callers allocate inside their own write transaction.
 */
export class StreamCounter {
  private pos: number;
  private readonly save: Database.Statement<[string]>;
  constructor(db: Db) {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'stream'").get() as { value: string };
    this.pos = Number(row.value);
    this.save = db.prepare("UPDATE meta SET value = ? WHERE key = 'stream'");
  }
  get current(): number {
    return this.pos;
  }
  next(): number {
    this.pos += 1;
    this.save.run(String(this.pos));
    return this.pos;
  }
}
