/**
 * The SQLite crypto store (better-sqlite3), Keyroom's default on Node.
 *
 * - Location: `directory` + `fileName` (default `keyroom-crypto.sqlite3`); the directory is
 *   created with mode 0700 if missing.
 * - WAL journal, prepared statements, and every `saveChanges` in one transaction. A commit survives
 *   a process crash at once; it is synced to the disk (survives power loss) unless it only holds
 *   per-message changes: see `durability.ts` and docs/stores.md ("Durability").
 * - Sharing: any number of processes (and instances in one process) may open the store; they take
 *   turns through its lease (`lease.ts`), and a save from an instance whose view is old is refused
 *   (`StoreLockedError("STALE")`). SQLite's own lock guards each transaction; a writer waits for
 *   another's transaction up to `busyTimeoutMs`.
 * - Secrets at rest: see `cipher/store-cipher.ts`; without a passphrase or key, a key file
 *   `<fileName>.key` (mode 0600) is created beside the database.
 */
import { closeSync, linkSync, mkdirSync, openSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { encodeBase64Url, randomBytes, wipe } from "../../crypto/primitives/index.ts";
import type { CryptoChanges } from "../changes.ts";
import { createOrReadKeyFile, readKeyFile } from "../cipher/key-file.ts";
import { type KeyProtection, StoreCipher } from "../cipher/store-cipher.ts";
import { StoreError, StoreKeyError, StoreLockedError, StoreMismatchError } from "../errors.ts";
import { type IdentityRequest, resolveIdentity } from "../identity.ts";
import type { JsonValue } from "../json.ts";
import { isPerMessage } from "../per-message.ts";
import type {
  AccountRecord,
  BackupStateRecord,
  CrossSigningIdentityRecord,
  DeviceRecord,
  InboundGroupSessionRecord,
  OlmSessionRecord,
  OutboundGroupSessionRecord,
  OutgoingKeyRequestRecord,
  QueuedRequestRecord,
  ReplayRecord,
  RivalRoomKeyRecord,
  RoomSessionKey,
  RoomSettingsRecord,
  StoreIdentity,
  TrackedUserRecord,
  WithheldRecord,
} from "../records.ts";
import type {
  BackUpReadOptions,
  CryptoStore,
  InboundGroupSessionCounts,
  InboundGroupSessionPage,
  LeaseGrant,
} from "../store.ts";
import { parseIdentity, parseLimit, parsePageRequest, parseSessionKeys, parseUserIds } from "../validate.ts";
import { currentBootId, markClosed, markOpen } from "./durability.ts";
import { type Fenced, holderName, SqliteLease } from "./lease.ts";
import { isBusy, migrate } from "./migrations.ts";
import { parseJson, SqliteStatements } from "./statements.ts";

export const DEFAULT_SQLITE_FILE_NAME = "keyroom-crypto.sqlite3";
/**
 * How long a write waits for another process's transaction on the same file (SQLite's busy
 * timeout). Transactions are short (one step's changes; a large key import is the longest), so this
 * is a guard against a stuck process rather than a schedule; raise it with `busyTimeoutMs` on
 * very slow disks.
 */
export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 30_000;
/**
 * SQLite's page cache per connection, in KiB (SQLite's default is 2 000). Session IDs are random,
 * so a batch of imported keys or of replay records lands on pages all over the indexes; with the
 * default cache each commit read most of them back from the file first. Filled only as pages are
 * used, so a small store costs no more.
 */
export const SQLITE_CACHE_KIB = 32_768;
/**
 * WAL pages after which a commit copies the WAL into the database file (SQLite's default is
 * 1 000). Random keys make each commit dirty many pages; copying them back every few commits cost
 * as much again as writing them. Durability does not depend on it (a commit is durable once in the
 * WAL, see "Durability" in docs/stores.md); the WAL file grows to about this many 4 KiB pages and
 * is removed on the last close.
 */
export const SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000;

export interface SqliteCryptoStoreOptions extends IdentityRequest {
  /** Directory holding the database (and its key file); created if missing. */
  readonly directory: string;
  /** Database file name inside `directory`. */
  readonly fileName?: string;
  /** Protects the store key with PBKDF2-SHA-512 of this passphrase. */
  readonly passphrase?: string;
  /** Or: a 32-byte key from elsewhere (an OS keychain, a KMS). */
  readonly key?: Uint8Array;
  /** PBKDF2 iterations for a NEW passphrase-protected store (default `STORE_KDF_ITERATIONS`). */
  readonly kdfIterations?: number;
  /** See `DEFAULT_SQLITE_BUSY_TIMEOUT_MS`. */
  readonly busyTimeoutMs?: number;
}

/** The file's size, or undefined if there is no file. */
function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Makes sure a database file exists at `path`, never leaving an empty one: a new file is made
 * under a temporary name (with its header written) and linked into place, which fails if another
 * process got there first. So an empty file at `path` can only be a damaged store.
 */
function ensureDatabaseFile(path: string): void {
  const size = sizeOf(path);
  if (size === 0) {
    throw new StoreError(
      "CORRUPT",
      `the crypto store at ${path} is empty (truncated?); it is not started again as a new store, ` +
        "which would bring this device back with new keys. Restore it from a backup, or move it " +
        "away and log in as a new device",
    );
  }
  if (size !== undefined) return;
  // Random: two threads of one process (one pid) may create the same store in the same millisecond.
  const temporary = `${path}.${encodeBase64Url(randomBytes(9))}.new`;
  try {
    // Made 0600 before SQLite opens it (SQLite would make it 0644 under the usual umask, in a
    // directory the caller may have made readable to others): its WAL and shm files copy its mode.
    closeSync(openSync(temporary, "wx", 0o600));
    const db = new Database(temporary);
    try {
      db.pragma("journal_mode = WAL");
    } finally {
      db.close();
    }
    try {
      linkSync(temporary, path);
    } catch (e) {
      if ((e as { code?: unknown }).code !== "EEXIST") throw e;
    }
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // already gone
    }
  }
}

function checkFileName(name: string): string {
  if (name.length === 0 || name.includes("/") || name.includes("\\") || name === "." || name === "..") {
    throw new StoreError(
      "BAD_OPTION",
      "the store fileName must be a plain file name (use directory for the path)",
    );
  }
  return name;
}

export class SqliteCryptoStore implements CryptoStore {
  readonly #db: Database.Database;
  readonly #st: SqliteStatements;
  readonly #identity: StoreIdentity;
  /** Where the database lives (for messages; holds no secret). */
  readonly path: string;
  #closed = false;
  /** The connection's `synchronous` setting: FULL (synced commits) or NORMAL (per-message ones). */
  #synced = true;
  /** `saveChanges`' transaction, made once (better-sqlite3 builds a wrapper per `transaction()` call). */
  readonly #save: Database.Transaction<(changes: CryptoChanges) => Fenced | undefined>;
  readonly #lease: SqliteLease;
  readonly #leaseTx: {
    acquire: Database.Transaction<(durationMs: number) => LeaseGrant | undefined>;
    renew: Database.Transaction<(durationMs: number) => boolean>;
    release: Database.Transaction<() => void>;
  };

  private constructor(
    db: Database.Database,
    st: SqliteStatements,
    identity: StoreIdentity,
    path: string,
    lease: SqliteLease,
  ) {
    this.#db = db;
    this.#st = st;
    this.#identity = identity;
    this.path = path;
    this.#lease = lease;
    this.#save = db.transaction((changes: CryptoChanges) => {
      const fenced = lease.fence();
      st.apply(changes);
      return fenced;
    });
    this.#leaseTx = {
      acquire: db.transaction((durationMs: number) => lease.acquire(durationMs)),
      renew: db.transaction((durationMs: number) => lease.renew(durationMs)),
      release: db.transaction(() => lease.release()),
    };
  }

  static async open(options: SqliteCryptoStoreOptions): Promise<SqliteCryptoStore> {
    const fileName = checkFileName(options.fileName ?? DEFAULT_SQLITE_FILE_NAME);
    if (options.passphrase !== undefined && options.key !== undefined) {
      throw new StoreError("BAD_OPTION", "give a passphrase or a key, not both");
    }
    const path = join(options.directory, fileName);
    let db: Database.Database;
    try {
      mkdirSync(options.directory, { recursive: true, mode: 0o700 });
      ensureDatabaseFile(path);
      db = new Database(path, { timeout: options.busyTimeoutMs ?? DEFAULT_SQLITE_BUSY_TIMEOUT_MS });
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError("BACKEND", `the crypto store at ${path} could not be opened`, { cause: e });
    }
    try {
      try {
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = FULL");
        db.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
        db.pragma(`wal_autocheckpoint = ${SQLITE_WAL_AUTOCHECKPOINT_PAGES}`);
        migrate(db);
      } catch (e) {
        if (isBusy(e)) throw new StoreLockedError(path, { cause: e });
        throw e;
      }
      const st = new SqliteStatements(db);
      // Read together (one snapshot): the identity checked must be the one the key header came with.
      const [storedIdentity, header] = db.transaction(() => [st.meta("identity"), st.meta("store_key")])();
      const identity = resolveIdentity(
        storedIdentity === undefined ? undefined : parseIdentity(parseJson(storedIdentity, "store identity")),
        options,
      );
      const keyFile = `${path}.key`;
      let cipher: StoreCipher;
      if (header === undefined) {
        const protection: KeyProtection =
          options.passphrase !== undefined
            ? { kind: "passphrase", passphrase: options.passphrase, iterations: options.kdfIterations }
            : options.key !== undefined
              ? { kind: "key", key: options.key }
              : { kind: "key-file", key: createOrReadKeyFile(keyFile) };
        let created: Awaited<ReturnType<typeof StoreCipher.create>>;
        try {
          created = await StoreCipher.create(protection);
        } finally {
          if (protection.kind === "key-file") wipe(protection.key); // ours, read from the file
        }
        cipher = created.cipher;
        // Two processes creating the store at once: the first header wins, the second must use it.
        let raced = false;
        db.transaction(() => {
          raced = st.meta("store_key") !== undefined;
          if (raced) return;
          st.setMeta("identity", JSON.stringify(identity));
          st.setMeta("store_key", JSON.stringify(created.header));
        }).immediate();
        if (raced) {
          db.close();
          return SqliteCryptoStore.open(options);
        }
      } else {
        const stored = parseJson(header, "store key header");
        let protection: KeyProtection;
        if (options.passphrase !== undefined)
          protection = { kind: "passphrase", passphrase: options.passphrase };
        else if (options.key !== undefined) protection = { kind: "key", key: options.key };
        else if (peekKind(stored) === "key-file")
          protection = { kind: "key-file", key: readKeyFile(keyFile) };
        else {
          throw new StoreKeyError(
            "KEY_KIND_MISMATCH",
            "this crypto store is protected by a passphrase or key; open it with the same one",
          );
        }
        try {
          cipher = await StoreCipher.unlock(stored, protection);
        } finally {
          if (protection.kind === "key-file") wipe(protection.key); // ours, read from the file
        }
      }
      st.setCipher(cipher, identity);
      // The account is bound to the identity: one rewritten in the file fails here, typed, before
      // anyone logs in under it.
      st.account();
      const bootId = currentBootId();
      const lease = new SqliteLease(db, holderName(bootId, encodeBase64Url(randomBytes(12))), path, bootId);
      markOpen(db, bootId, () => lease.bump());
      db.transaction(() => lease.open()).immediate();
      return new SqliteCryptoStore(db, st, identity, path, lease);
    } catch (e) {
      db.close();
      throw typed(e, `the crypto store at ${path} could not be opened`);
    }
  }

  #s(): SqliteStatements {
    if (this.#closed) throw new StoreError("CLOSED", "this crypto store is closed");
    return this.#st;
  }

  async loadIdentity(): Promise<StoreIdentity> {
    this.#s();
    return { ...this.#identity };
  }

  async loadAccount(): Promise<AccountRecord | undefined> {
    return this.#s().account();
  }

  async getOlmSessions(senderKey: string, unreadable?: string[]): Promise<OlmSessionRecord[]> {
    return this.#s().olmSessions(senderKey, unreadable);
  }

  async getInboundGroupSession(
    roomId: string,
    sessionId: string,
  ): Promise<InboundGroupSessionRecord | undefined> {
    return this.#s().inbound(roomId, sessionId);
  }

  async getInboundGroupSessions(keys: readonly RoomSessionKey[]): Promise<InboundGroupSessionRecord[]> {
    return this.#s().inboundMany(parseSessionKeys(keys));
  }

  async getInboundGroupSessionsForRoom(
    roomId: string,
    unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]> {
    return this.#s().inboundForRoom(roomId, unreadable);
  }

  async countInboundGroupSessions(): Promise<InboundGroupSessionCounts> {
    return this.#s().inboundCounts();
  }

  async listInboundGroupSessions(
    page: InboundGroupSessionPage,
    unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]> {
    const { after, limit } = parsePageRequest(page);
    return this.#s().inboundPage(after, limit, unreadable);
  }

  async getInboundGroupSessionsToBackUp(
    limit: number,
    unreadable?: RoomSessionKey[],
    options?: BackUpReadOptions,
  ): Promise<InboundGroupSessionRecord[]> {
    return this.#s().inboundToBackUp(limit, unreadable, options);
  }

  async getOutboundGroupSession(roomId: string): Promise<OutboundGroupSessionRecord | undefined> {
    return this.#s().outbound(roomId);
  }

  async getUserDevices(userId: string): Promise<DeviceRecord[]> {
    return this.#s().userDevices(userId);
  }

  async getDevicesOfUsers(userIds: readonly string[]): Promise<DeviceRecord[]> {
    this.#s();
    const users = parseUserIds(userIds);
    try {
      return this.#s().devicesOfUsers(users);
    } catch (e) {
      throw typed(e, "reading devices failed");
    }
  }

  async getDeviceByCurve25519Key(curve25519Key: string): Promise<DeviceRecord | undefined> {
    return this.#s().deviceByCurve(curve25519Key);
  }

  async getCrossSigningIdentity(userId: string): Promise<CrossSigningIdentityRecord | undefined> {
    return this.#s().crossSigning(userId);
  }

  async getSecret(name: string): Promise<string | undefined> {
    return this.#s().secret(name);
  }

  async getTrackedUsers(): Promise<TrackedUserRecord[]> {
    return this.#s().trackedUsers();
  }

  async getOutgoingKeyRequests(): Promise<OutgoingKeyRequestRecord[]> {
    return this.#s().keyRequests();
  }

  async getRivalRoomKeys(): Promise<RivalRoomKeyRecord[]> {
    return this.#s().rivals();
  }

  async getWithheld(roomId: string, sessionId: string): Promise<WithheldRecord | undefined> {
    return this.#s().withheld(roomId, sessionId);
  }

  async isOlmMessageKnown(senderKey: string, hash: string): Promise<boolean> {
    return this.#s().olmMessageKnown(senderKey, hash);
  }

  async getCustomValue(key: string): Promise<JsonValue | undefined> {
    return this.#s().customValue(key);
  }

  async getReplays(roomId: string, sessionId: string, limit: number): Promise<ReplayRecord[]> {
    return this.#s().replays(roomId, sessionId, limit);
  }

  async getReplaysOfSessions(sessions: readonly RoomSessionKey[], limit: number): Promise<ReplayRecord[]> {
    this.#s();
    const keys = parseSessionKeys(sessions);
    const max = parseLimit(limit);
    try {
      // One statement: one snapshot for all of them.
      return this.#s().replaysOfSessions(keys, max);
    } catch (e) {
      throw typed(e, "reading replay records failed");
    }
  }

  async getReplay(
    roomId: string,
    sessionId: string,
    messageIndex: number,
  ): Promise<ReplayRecord | undefined> {
    return this.#s().replay(roomId, sessionId, messageIndex);
  }

  async getRoomSettings(roomId: string): Promise<RoomSettingsRecord | undefined> {
    return this.#s().roomSettings(roomId);
  }

  async getBackupState(): Promise<BackupStateRecord | undefined> {
    return this.#s().backupState();
  }

  async getQueuedRequests(): Promise<QueuedRequestRecord[]> {
    return this.#s().queuedRequests();
  }

  async getNextBatch(): Promise<string | undefined> {
    return this.#s().meta("next_batch");
  }

  async saveChanges(changes: CryptoChanges): Promise<void> {
    this.#s();
    // better-sqlite3 rolls the transaction back if anything inside throws.
    try {
      const synced = !isPerMessage(changes);
      if (synced !== this.#synced) {
        this.#db.pragma(synced ? "synchronous = FULL" : "synchronous = NORMAL");
        this.#synced = synced;
      }
      this.#lease.committed(this.#save.immediate(changes));
    } catch (e) {
      throw typed(e, "saving crypto changes failed; nothing was saved");
    }
  }

  /**
   * Changes the passphrase of a passphrase-protected store: the same store key, wrapped under a key
   * derived from `newPassphrase` with a fresh salt (PBKDF2 as at creation, `kdfIterations` or
   * `STORE_KDF_ITERATIONS`), written as one header row in one synced transaction, so a crash leaves
   * exactly one of the two passphrases working. Records are not re-encrypted. Refused before
   * anything is written: an empty new passphrase (`StoreError("BAD_OPTION")`), a wrong old one
   * (`WRONG_KEY`), a store made with a key or key file (`KEY_KIND_MISMATCH`). The write is fenced
   * like a save: under this instance's lease, or taking the lease for its transaction; another
   * instance holding it, or a save elsewhere since this one's view, is `StoreLockedError("STALE")`.
   */
  async changePassphrase(
    oldPassphrase: string,
    newPassphrase: string,
    options: { readonly kdfIterations?: number } = {},
  ): Promise<void> {
    const st = this.#s();
    try {
      const before = st.meta("store_key");
      const header = await StoreCipher.changePassphrase(
        parseJson(before, "store key header"),
        oldPassphrase,
        newPassphrase,
        options.kdfIterations,
      );
      this.#s();
      if (!this.#synced) {
        this.#db.pragma("synchronous = FULL");
        this.#synced = true;
      }
      const fenced = this.#db
        .transaction(() => {
          const fence = this.#lease.fence();
          // Changed by another instance since it was read (its fence moved the generation too).
          if (st.meta("store_key") !== before) throw new StoreLockedError(this.path, { code: "STALE" });
          st.setMeta("store_key", JSON.stringify(header));
          return fence;
        })
        .immediate();
      this.#lease.committed(fenced);
    } catch (e) {
      throw typed(e, "changing the crypto store's passphrase failed; nothing was changed");
    }
  }

  /**
   * Lease writes need not reach the disk before returning (a power loss ends every holder anyway,
   * and the generation only matters to processes of the same boot): no disk sync per unit of work.
   */
  #unsynced(): void {
    if (!this.#synced) return;
    this.#db.pragma("synchronous = NORMAL");
    this.#synced = false;
  }

  async tryAcquireLease(durationMs: number): Promise<LeaseGrant | undefined> {
    this.#s();
    try {
      this.#unsynced();
      return this.#leaseTx.acquire.immediate(durationMs);
    } catch (e) {
      throw typed(e, "taking the crypto store's lease failed");
    }
  }

  async renewLease(durationMs: number): Promise<boolean> {
    this.#s();
    try {
      this.#unsynced();
      return this.#leaseTx.renew.immediate(durationMs);
    } catch (e) {
      throw typed(e, "renewing the crypto store's lease failed");
    }
  }

  async releaseLease(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#unsynced();
      this.#leaseTx.release.immediate();
    } catch (e) {
      throw typed(e, "releasing the crypto store's lease failed");
    }
  }

  /** SQLite has no way to tell other processes; they find the new generation when they take the lease. */
  onChangedElsewhere(_listener: () => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#leaseTx.release.immediate();
    } catch {
      // It expires on its own.
    }
    this.#closed = true;
    try {
      if (!this.#synced) this.#db.pragma("synchronous = FULL");
      markClosed(this.#db);
    } catch {
      // Not recorded as closed: the next open in another boot discards the outbound sessions (safe).
    }
    this.#db.close();
  }
}

/** Our own errors pass through; anything from SQLite or the file system becomes `StoreError("BACKEND")`. */
function typed(e: unknown, message: string): Error {
  if (
    e instanceof StoreError ||
    e instanceof StoreKeyError ||
    e instanceof StoreLockedError ||
    e instanceof StoreMismatchError
  ) {
    return e;
  }
  return new StoreError("BACKEND", message, { cause: e });
}

/** The kind recorded in a stored key header, without trusting the rest of it. */
function peekKind(header: unknown): unknown {
  return typeof header === "object" && header !== null ? (header as { kind?: unknown }).kind : undefined;
}
