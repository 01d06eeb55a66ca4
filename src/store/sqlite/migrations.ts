/**
 * Numbered schema migrations for the SQLite store. A migration is never edited once released:
 * schema changes append a new one. `schema_version` holds the version the file is at; each
 * migration runs in its own transaction together with the version bump.
 */
import type { Database } from "better-sqlite3";
import { StoreError } from "../errors.ts";

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "identity, account, Olm and Megolm sessions, devices, secrets, key requests, replays",
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
      CREATE TABLE olm_sessions (
        sender_key TEXT NOT NULL, session_id TEXT NOT NULL,
        created_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, pickle TEXT NOT NULL,
        PRIMARY KEY (sender_key, session_id));
      CREATE TABLE inbound_group_sessions (
        room_id TEXT NOT NULL, session_id TEXT NOT NULL, sender_key TEXT NOT NULL,
        sender_claimed_ed25519 TEXT NOT NULL, first_known_index INTEGER NOT NULL,
        imported INTEGER NOT NULL, forwarded INTEGER NOT NULL, forwarding_chain TEXT NOT NULL,
        backed_up INTEGER NOT NULL, pickle TEXT NOT NULL,
        PRIMARY KEY (room_id, session_id));
      CREATE TABLE outbound_group_sessions (
        room_id TEXT PRIMARY KEY NOT NULL, session_id TEXT NOT NULL, created_at INTEGER NOT NULL,
        message_count INTEGER NOT NULL, sharing TEXT NOT NULL, pickle TEXT NOT NULL);
      CREATE TABLE devices (
        user_id TEXT NOT NULL, device_id TEXT NOT NULL, curve25519_key TEXT NOT NULL,
        ed25519_key TEXT NOT NULL, trust TEXT NOT NULL, deleted INTEGER NOT NULL, keys TEXT NOT NULL,
        PRIMARY KEY (user_id, device_id));
      CREATE INDEX devices_by_curve25519 ON devices (curve25519_key);
      CREATE TABLE cross_signing_identities (user_id TEXT PRIMARY KEY NOT NULL, identity TEXT NOT NULL);
      CREATE TABLE secrets (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
      CREATE TABLE tracked_users (user_id TEXT PRIMARY KEY NOT NULL, outdated INTEGER NOT NULL);
      CREATE TABLE outgoing_key_requests (
        request_id TEXT PRIMARY KEY NOT NULL, room_id TEXT NOT NULL, session_id TEXT NOT NULL,
        record TEXT NOT NULL);
      CREATE INDEX outgoing_key_requests_by_session ON outgoing_key_requests (room_id, session_id);
      CREATE TABLE withheld (
        room_id TEXT NOT NULL, session_id TEXT NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (room_id, session_id));
      CREATE TABLE replays (
        room_id TEXT NOT NULL, session_id TEXT NOT NULL, message_index INTEGER NOT NULL,
        event_id TEXT NOT NULL, timestamp INTEGER NOT NULL,
        PRIMARY KEY (room_id, session_id, message_index));
    `,
  },
  {
    version: 2,
    description: "room settings, the persisted outgoing request queue, an index of sessions to back up",
    sql: `
      CREATE TABLE room_settings (room_id TEXT PRIMARY KEY NOT NULL, settings TEXT NOT NULL);
      CREATE TABLE queued_requests (
        request_id TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, created_at INTEGER NOT NULL,
        body TEXT NOT NULL);
      CREATE INDEX queued_requests_by_age ON queued_requests (created_at, request_id);
      CREATE INDEX inbound_group_sessions_to_back_up
        ON inbound_group_sessions (room_id, session_id) WHERE backed_up = 0;
    `,
  },
  {
    version: 3,
    description: "hashes of decrypted Olm messages, custom values",
    sql: `
      CREATE TABLE olm_message_hashes (
        sender_key TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (sender_key, hash)) WITHOUT ROWID;
      CREATE TABLE custom_values (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
    `,
  },
  {
    version: 4,
    description:
      "outbound sessions' device lists apart from their ratchet, so a message rewrites only the ratchet",
    sql: `
      CREATE TABLE outbound_group_session_sharing (room_id TEXT PRIMARY KEY NOT NULL, sharing TEXT NOT NULL);
      INSERT INTO outbound_group_session_sharing (room_id, sharing)
        SELECT room_id, sharing FROM outbound_group_sessions;
      ALTER TABLE outbound_group_sessions DROP COLUMN sharing;
    `,
  },
  {
    version: 5,
    description: "the shared-history flag (MSC4268) of inbound and outbound Megolm sessions",
    sql: `
      ALTER TABLE inbound_group_sessions ADD COLUMN shared_history INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE outbound_group_sessions ADD COLUMN shared_history INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 6,
    description:
      "the index of sessions to back up in row order, not by room and session: new sessions append to it",
    // Session IDs are random, so an index keyed by them took every imported or received key at a
    // random place: a commit of many keys rewrote most of its pages. Keyed by the row ID (the
    // indexed column is 0 in every entry), new rows go at its end. The backup reads it in row order.
    sql: `
      DROP INDEX inbound_group_sessions_to_back_up;
      CREATE INDEX inbound_group_sessions_to_back_up_by_row
        ON inbound_group_sessions (backed_up) WHERE backed_up = 0;
    `,
  },
  {
    version: 7,
    description:
      "withheld notices and Olm message hashes numbered in the order stored, so the oldest give way at their bound",
    // `seq` is the row ID (stable, unlike an implicit one, across VACUUM). Rows only ever leave
    // from the low end and a notice saved again keeps its row, so the numbers stay contiguous:
    // the count is max - min + 1 and the eviction one range delete by `seq` (statements.ts).
    // Withheld rows keep the order of their old row IDs (insertion, a replaced row last); the
    // hashes had no order (WITHOUT ROWID): they are numbered in key order.
    sql: `
      CREATE TABLE withheld_by_seq (
        seq INTEGER PRIMARY KEY, room_id TEXT NOT NULL, session_id TEXT NOT NULL, record TEXT NOT NULL,
        UNIQUE (room_id, session_id));
      INSERT INTO withheld_by_seq (room_id, session_id, record)
        SELECT room_id, session_id, record FROM withheld ORDER BY rowid;
      DROP TABLE withheld;
      ALTER TABLE withheld_by_seq RENAME TO withheld;
      CREATE TABLE olm_message_hashes_by_seq (
        seq INTEGER PRIMARY KEY, sender_key TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (sender_key, hash));
      INSERT INTO olm_message_hashes_by_seq (sender_key, hash)
        SELECT sender_key, hash FROM olm_message_hashes ORDER BY sender_key, hash;
      DROP TABLE olm_message_hashes;
      ALTER TABLE olm_message_hashes_by_seq RENAME TO olm_message_hashes;
    `,
  },
  {
    version: 8,
    description: "tracked users' sender-only mark and order, so the bound on them holds across restarts",
    // NULL: a room member (tracked for good). Users tracked before this version were room members
    // or not known to be otherwise: they stay NULL, never given up. The version also keeps an
    // older Keyroom, which would rewrite these rows without the mark, from opening the file.
    sql: "ALTER TABLE tracked_users ADD COLUMN sender_order INTEGER;",
  },
  {
    version: 9,
    description:
      "rival room keys: direct shares of a held session naming another creator, kept across restarts",
    // `seq` is the row ID: the order stored (a rival saved again keeps its row), for the bounds.
    // Rows leave from anywhere (a session's rivals are deleted when it settles), so the bounds
    // keep the newest rows by `seq` rather than a contiguous range.
    sql: `
      CREATE TABLE rival_room_keys (
        seq INTEGER PRIMARY KEY, room_id TEXT NOT NULL, session_id TEXT NOT NULL, sender_key TEXT NOT NULL,
        sender_claimed_ed25519 TEXT NOT NULL, shared_history INTEGER NOT NULL, pickle TEXT NOT NULL,
        UNIQUE (room_id, session_id, sender_key));
    `,
  },
];

export const LATEST_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** The version the file is at (0 for a new, empty file). */
export function schemaVersion(db: Database): number {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    .get();
  if (table === undefined) return 0;
  const row = db.prepare("SELECT version FROM schema_version").get() as { version?: unknown } | undefined;
  const v = row?.version;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new StoreError("MIGRATION_FAILED", "the store's schema_version table is malformed");
  }
  return v;
}

/** Whether `e` is SQLite saying another connection holds the database. */
export function isBusy(e: unknown): boolean {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
}

function checkNotTooNew(version: number): void {
  if (version > LATEST_SCHEMA_VERSION) {
    throw new StoreError(
      "SCHEMA_TOO_NEW",
      `this crypto store has schema version ${version}, newer than the ${LATEST_SCHEMA_VERSION} this Keyroom ` +
        "understands; upgrade Keyroom to open it",
    );
  }
}

/**
 * Brings the file up to `target` (the latest by default), one migration per transaction. Each
 * transaction takes the write lock first and reads the version again under it: another process
 * opening the same file may have run that migration since (two processes creating a store at once).
 * A busy database is thrown as SQLite's own error, for the caller to report as locked.
 */
export function migrate(db: Database, target: number = LATEST_SCHEMA_VERSION): number {
  let current = schemaVersion(db);
  checkNotTooNew(current);
  for (const m of MIGRATIONS) {
    if (m.version <= current || m.version > target) continue;
    try {
      current = db
        .transaction((): number => {
          const now = schemaVersion(db);
          checkNotTooNew(now);
          if (now >= m.version) return now;
          if (now === 0) db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
          db.exec(m.sql);
          db.prepare("DELETE FROM schema_version").run();
          db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(m.version);
          return m.version;
        })
        .immediate();
    } catch (e) {
      if (e instanceof StoreError || isBusy(e)) throw e;
      throw new StoreError("MIGRATION_FAILED", `schema migration ${m.version} (${m.description}) failed`, {
        cause: e,
      });
    }
  }
  return current;
}
