// `client.crypto.backup`: server-side key backup. The engine (`OlmMachine.backup`) decides and
// encrypts; this sends its requests: version creation and checks, automatic incremental uploads
// after syncs, restores with progress (backup-restore.ts, loaded on first use), and on-demand
// lookups of the keys undecryptable events lack.
import { platform } from "#client-platform";
import { KeyBackupError } from "../../e2ee/backup/errors.ts";
import type {
  BackupLookupRequest,
  BackupStopReason,
  BackupTrustSource,
  DecryptedRoomEvent,
  OlmMachine,
  VersionCheck,
} from "../../e2ee/index.ts";
import { backupVersionResponseSchema, type JsonObject, jsonObjectSchema } from "../../wire/index.ts";
import { MatrixError } from "../errors.ts";
import { errorSummary } from "../events/emitter.ts";
import { type HttpClient, path } from "../http.ts";
import type { Logger } from "../logger.ts";
import type { RestoreBackupOptions, RestoreBackupResult } from "./backup-restore.ts";
import { KEY_BACKUP_ACCOUNT_DATA, LEGACY_BACKUP_DISABLED_ACCOUNT_DATA } from "./constants.ts";
import { Serial } from "./outgoing.ts";

export type { RestoreBackupOptions, RestoreBackupResult };
export { KEY_BACKUP_ACCOUNT_DATA, LEGACY_BACKUP_DISABLED_ACCOUNT_DATA };

/**
 * Whether the user wants key backup, as the account data says: `m.key_backup`'s `enabled` when it
 * is a boolean; else the legacy `m.org.matrix.custom.backup_disabled`'s `disabled` (negated) when
 * that is a boolean; else undefined (neither says, and this device's own choice stands). Both are
 * one setting under two names, as matrix-rust-sdk reads them; any other content (`{}`, the way
 * clients delete account data, a string, a number) says nothing.
 */
export function backupEnabledInAccountData(
  getAccountData: (type: string) => JsonObject | undefined,
): boolean | undefined {
  const enabled = getAccountData(KEY_BACKUP_ACCOUNT_DATA)?.enabled;
  if (typeof enabled === "boolean") return enabled;
  const disabled = getAccountData(LEGACY_BACKUP_DISABLED_ACCOUNT_DATA)?.disabled;
  return typeof disabled === "boolean" ? !disabled : undefined;
}

export interface BackupStatus {
  /** The version this device uses, if any. */
  readonly version: string | undefined;
  /** It passed the trust check (a signature of ours, or the private key we hold): uploads go to it. */
  readonly trusted: boolean;
  /** What made it trusted, as last checked in this process. */
  readonly trustedBy: BackupTrustSource | undefined;
  /** We hold its private key (restore and on-demand lookups work). */
  readonly hasKey: boolean;
  /** Room keys marked uploaded to it, and all room keys held. */
  readonly backedUp: number;
  readonly total: number;
  /** New room keys are uploaded after each sync (trusted, not stopped, not turned off in account data). */
  readonly uploading: boolean;
  /** Why uploading stopped: the server replaced or deleted the version. */
  readonly stopped: BackupStopReason | undefined;
  /**
   * The user's choice in account data (`backupEnabledInAccountData`): `m.key_backup`'s `enabled`,
   * else the legacy `m.org.matrix.custom.backup_disabled`'s `disabled` negated; undefined when
   * neither says. False: no upload runs, and nothing makes a new version on its own.
   */
  readonly enabledInAccountData: boolean | undefined;
}

export interface NewBackupVersion {
  readonly version: string;
  /** The version's private key: keep it (secret storage stores it as `m.megolm_backup.v1`). */
  readonly privateKey: Uint8Array;
  /** The same key as a recovery key (`EsT… …`), to show the user once. */
  readonly recoveryKey: string;
}

export interface KeyBackupHost {
  readonly machine: OlmMachine;
  readonly http: HttpClient;
  readonly logger: Logger;
  getAccountData(type: string): JsonObject | undefined;
  setAccountData(type: string, content: JsonObject): Promise<void>;
  /** Emits events that waited for keys the backup gave. */
  emitRedecrypted(events: readonly DecryptedRoomEvent[]): Promise<void>;
  reportError(error: unknown): void;
  /** The rooms the client knows (joined, invited, left): a backup too large for one answer comes down room by room. */
  knownRooms(): Iterable<string>;
  /** Runs background work as one unit of work on the crypto store (its lease); inline when absent. */
  exclusive?<T>(work: () => Promise<T>): Promise<T>;
}

/**
 * Backup steps in a row that one `uploadPending` runs without a batch, each having read past
 * damaged room-key rows (at most `MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP` each, so 20 000 rows); the
 * next run, after the next sync, goes on. Each such step passes over or marks the rows it met, so
 * the steps end anyway on a conforming store: this bounds one run on a store that keeps naming rows.
 */
export const MAX_BACKUP_STEPS_WITHOUT_BATCH = 200;
const PASSED_DAMAGED_ROWS = "passed";

/** The recovery-key codec (base58 with a parity byte), loaded when a recovery key is made or read. */
const recoveryKeys = () => import("../../crypto/recovery-key/recovery-key.ts");

async function keyBytes(key: Uint8Array | string): Promise<Uint8Array> {
  return typeof key === "string" ? (await recoveryKeys()).decodeRecoveryKey(key) : key;
}

export class KeyBackup {
  readonly #host: KeyBackupHost;
  /** The background work after syncs (uploads, lookups), one at a time. */
  #background: Promise<void> | undefined;
  /**
   * Upload batches, one at a time in this process: the engine offers the same batch until it is
   * answered, so a caller's `uploadPending` beside the background run would send it twice, and
   * the second refusal (a replaced version) would reach that caller as a raw server error.
   */
  readonly #uploads = new Serial();
  #again = false;
  #versionChecked = false;
  #closed = false;

  constructor(host: KeyBackupHost) {
    this.#host = host;
  }

  /** One unit of work on the crypto store (under its lease when the store is shared). */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#host.exclusive?.(work) ?? work();
  }

  get #backup(): OlmMachine["backup"] {
    return this.#host.machine.backup;
  }

  /**
   * Creates a backup version (its `auth_data` signed by this device and, when held, our master
   * key), makes it the one this device uploads to, and turns backup on in account data
   * (`m.key_backup` enabled, and the legacy `m.org.matrix.custom.backup_disabled` cleared). Every room
   * key held is uploaded in the background. Returns the version's key once: keep it.
   */
  createVersion(): Promise<NewBackupVersion> {
    return this.#exclusive(() => this.#createVersion());
  }

  async #createVersion(): Promise<NewBackupVersion> {
    const { request, privateKey } = await this.#backup.prepareVersion();
    const answer = await this.#host.http.request({
      method: "POST",
      path: path`/_matrix/client/v3/room_keys/version`,
      body: request.body,
      schema: backupVersionResponseSchema,
    });
    const version = await this.#backup.versionCreated(request.id, answer);
    this.#versionChecked = true;
    await this.#setEnabled(true);
    this.schedule();
    return { version, privateKey, recoveryKey: (await recoveryKeys()).encodeRecoveryKey(privateKey) };
  }

  /**
   * Uses the server's current version with this key (32 bytes or a recovery key): throws
   * `KeyBackupError("KEY_MISMATCH")` if it is not that version's key, `NO_BACKUP` if the server
   * has none. The key is kept (encrypted at rest); uploads start if the version is trusted.
   */
  useKey(key: Uint8Array | string): Promise<BackupStatus> {
    return this.#exclusive(() => this.#useKey(key));
  }

  async #useKey(key: Uint8Array | string): Promise<BackupStatus> {
    const body = await this.#serverVersion();
    if (body === null) throw new KeyBackupError("NO_BACKUP", "the server has no key backup");
    const trust = await this.#backup.useVersion(body, await keyBytes(key));
    this.#versionChecked = true;
    if (trust.forged)
      this.#host.logger.warn({}, "the backup's auth_data carries a forged signature; not uploading");
    else if (!trust.trusted) this.#host.logger.warn({}, "the backup version is not trusted; not uploading");
    await this.#setEnabled(true);
    this.schedule();
    return this.#status({ check: false });
  }

  /** The backup as this device sees it; with `check` (default) the server's current version is asked first. */
  status(opts: { check?: boolean } = {}): Promise<BackupStatus> {
    return this.#exclusive(() => this.#status(opts));
  }

  async #status(opts: { check?: boolean } = {}): Promise<BackupStatus> {
    if (opts.check !== false) await this.#checkVersion();
    const s = await this.#backup.status();
    const enabled = this.#accountDataEnabled();
    return {
      version: s.version,
      trusted: s.trusted,
      trustedBy: s.trustedBy,
      hasKey: s.hasKey,
      backedUp: s.backedUp,
      total: s.total,
      uploading: s.uploading && enabled !== false,
      stopped: s.stopped,
      enabledInAccountData: enabled,
    };
  }

  /**
   * Asks the server for its current version: a version whose key we hold, or that our verified
   * device or trusted master key signed, is adopted, with none in use (not when backup is turned
   * off in account data) or in place of ours (another of our devices reset the backup); any other replaced or
   * deleted version stops uploading (reported as an error event).
   */
  checkVersion(): Promise<void> {
    return this.#exclusive(async () => {
      await this.#checkVersion();
    });
  }

  async #checkVersion(): Promise<VersionCheck | undefined> {
    // With none in use and backup turned off in account data, there is nothing to check or adopt.
    if (this.#accountDataEnabled() === false && (await this.#backup.status()).version === undefined)
      return undefined;
    const body = await this.#serverVersion();
    const result = await this.#backup.checkVersion(body);
    this.#versionChecked = true;
    if (result.kind === "stopped") {
      if (result.changed) this.#reportStop(result.reason);
    } else if (result.kind !== "none" && !result.trust.trusted) {
      this.#host.logger.warn(
        { forged: result.trust.forged },
        "the backup version is not trusted; not uploading",
      );
    } else if (result.kind === "adopted") this.schedule();
    return result;
  }

  /**
   * Restores room keys from the version this device uses (or the server's current one, with
   * `key`): everything, one room, or one session. Events that waited for them are emitted
   * (`room.decrypted`). Keys restored from the version we upload to are not uploaded again.
   * Everything comes down room by room (over the rooms the client knows) when the whole backup's
   * answer is over `MAX_BACKUP_RESPONSE_BYTES` (`download` says which); one room's or session's
   * answer over it fails with `ClientError("TOO_LARGE")`.
   */
  restore(opts: RestoreBackupOptions = {}): Promise<RestoreBackupResult> {
    return this.#exclusive(async () => {
      if (opts.sessionId !== undefined && opts.roomId === undefined) {
        throw new KeyBackupError("BAD_ARGUMENT", "a session is restored with its room");
      }
      const privateKey = opts.key === undefined ? undefined : await keyBytes(opts.key);
      let version = (await this.#backup.status()).version;
      if (version === undefined || privateKey !== undefined) {
        const body = await this.#serverVersion();
        const current = (body as { version?: unknown } | null)?.version;
        if (typeof current !== "string")
          throw new KeyBackupError("NO_BACKUP", "the server has no key backup");
        version = current;
      }
      // The download and import, loaded on first use (a chunk of its own in a browser bundle):
      // most sessions never restore.
      const { restoreKeyBackup } = await import("./backup-restore.ts");
      const ctx = {
        host: this.#host,
        serverVersion: () => this.#serverVersion(),
        threads: async () => platform.backupDecryptor?.(),
      };
      return restoreKeyBackup(ctx, version, privateKey, opts);
    });
  }

  /**
   * Deletes a version on the server (default: the one this device uses). Deleting the one in use
   * forgets it and its key here and turns backup off in account data (`m.key_backup` disabled,
   * and the legacy `m.org.matrix.custom.backup_disabled` set, which older Element Web reads).
   * A version the server no longer has (`M_NOT_FOUND`) counts as deleted.
   */
  deleteVersion(version?: string): Promise<void> {
    return this.#exclusive(() => this.#deleteVersion(version));
  }

  async #deleteVersion(version?: string): Promise<void> {
    const inUse = (await this.#backup.status()).version;
    const target = version ?? inUse;
    if (target === undefined) throw new KeyBackupError("NO_BACKUP", "no backup version to delete");
    try {
      await this.#host.http.request({
        method: "DELETE",
        path: path`/_matrix/client/v3/room_keys/version/${target}`,
        schema: jsonObjectSchema,
      });
    } catch (e) {
      // Already gone (another of our devices deleted it): done, as asked.
      if (!(e instanceof MatrixError && e.errcode === "M_NOT_FOUND")) throw e;
    }
    await this.#backup.forgetVersion(target);
    // Deleting an old version is housekeeping; deleting the one in use turns backup off.
    if (target === inUse) await this.#setEnabled(false);
  }

  /**
   * Uploads every room key not backed up yet, batch by batch, each batch one unit of work on the
   * store (another process sharing it can work between two batches); returns how many were marked.
   * A step that only read past damaged rows (at most `MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP`) is one
   * unit of work too, and the next goes on after them.
   */
  async uploadPending(): Promise<number> {
    if (this.#accountDataEnabled() === false) return 0;
    let marked = 0;
    let passing = 0;
    for (;;) {
      if (this.#closed) return marked;
      const batch = await this.#uploads.run(() => this.#exclusive(() => this.#uploadBatch()));
      if (batch === undefined) return marked;
      if (batch !== PASSED_DAMAGED_ROWS) {
        marked += batch;
        passing = 0;
      } else if (++passing >= MAX_BACKUP_STEPS_WITHOUT_BATCH) return marked;
    }
  }

  /**
   * One batch: sent, then how many were marked (or uploads stopped); `PASSED_DAMAGED_ROWS` for a
   * step that read past damaged rows and found no batch yet; undefined when nothing more goes up.
   */
  async #uploadBatch(): Promise<number | typeof PASSED_DAMAGED_ROWS | undefined> {
    // Nothing under way and no room key saved since the store last had none to back up (or
    // uploads are off): no engine step. Asked under the lease, so after a reload when another
    // process wrote (it may have saved room keys).
    if (!this.#backup.pendingWork().uploads) return undefined;
    const request = await this.#backup.nextUpload();
    // No batch, but still work: the step stopped at its bound on damaged rows, each of which the
    // next step passes over (or marks), so the steps end.
    if (request === undefined) return this.#backup.pendingWork().uploads ? PASSED_DAMAGED_ROWS : undefined;
    try {
      await this.#host.http.request({
        method: "PUT",
        path: path`/_matrix/client/v3/room_keys/keys`,
        query: { version: request.version },
        body: request.body,
        schema: jsonObjectSchema,
      });
    } catch (e) {
      const stopped = await this.#backup.uploadFailed(
        request.id,
        e instanceof MatrixError ? e.errcode : undefined,
      );
      if (stopped === undefined) throw e;
      // Refused as for a replaced or deleted version: the server's current one may be a version
      // another of our devices made (a reset), which the check switches to; every key goes up again.
      const check = await this.#checkVersion().catch(() => undefined);
      if (check?.kind === "adopted") return 0;
      // Reported once: by the check when it found another reason, else here.
      if (!(check?.kind === "stopped" && check.changed)) this.#reportStop(stopped);
      return undefined;
    }
    return this.#backup.uploaded(request.id);
  }

  /**
   * Looks up in the backup the sessions undecryptable events lack (before our other devices are
   * asked for them), each lookup one unit of work on the store; events that decrypt now are
   * emitted. Returns how many were found.
   */
  async fetchMissingKeys(): Promise<number> {
    let found = 0;
    // No session waiting to be looked up (asked under the lease, after a reload when another
    // process wrote): no engine step.
    const requests = await this.#exclusive(async () =>
      this.#backup.pendingWork().lookups ? this.#backup.lookupRequests() : [],
    );
    for (const request of requests) {
      if (this.#closed) break;
      if (await this.#exclusive(() => this.#lookUp(request))) found++;
    }
    return found;
  }

  async #lookUp(request: BackupLookupRequest): Promise<boolean> {
    let body: unknown;
    try {
      body = await this.#host.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/room_keys/keys/${request.roomId}/${request.sessionId}`,
        query: { version: request.version },
        schema: jsonObjectSchema,
      });
    } catch (e) {
      if (!(e instanceof MatrixError && e.errcode === "M_NOT_FOUND")) {
        this.#host.logger.warn({ err: errorSummary(e) }, "backup lookup failed; asking our devices");
      }
    }
    await this.#host.emitRedecrypted(await this.#backup.receiveLookup(request.id, body));
    return body !== undefined;
  }

  /**
   * `schedule()` after a sync response, unless the run would find nothing to do: the version was
   * checked, and the engine has no lookup and no upload waiting. Asked while the response's unit of
   * work holds the store (after a reload if another process wrote), as the run itself would ask;
   * the run took two units of work for every response (two lease turns, a crypto-store
   * transaction each when the lease was not held) to find nothing, as it does for most.
   */
  scheduleAfterSync(): void {
    if (this.#versionChecked && this.#background === undefined) {
      const work = this.#backup.pendingWork();
      if (!work.lookups && !work.uploads) return;
    }
    this.schedule();
  }

  /** Starts (or queues one more run of) the background work: version check once, lookups, uploads. */
  schedule(): void {
    if (this.#closed) return;
    this.#again = true;
    this.#background ??= this.#work().finally(() => {
      this.#background = undefined;
      // Asked for again between the loop's last check and here: run once more.
      if (this.#again) this.schedule();
    });
  }

  async #work(): Promise<void> {
    while (this.#again && !this.#closed) {
      this.#again = false;
      try {
        // Once per process: a replaced version stops uploads; with none in use, the account's
        // trusted version is adopted (unless the user turned backup off in account data).
        if (!this.#versionChecked) await this.checkVersion();
        await this.fetchMissingKeys();
        await this.uploadPending();
      } catch (e) {
        // Retried after the next sync; say what failed, never a key.
        this.#host.logger.warn({ err: errorSummary(e) }, "key backup work failed");
        this.#host.reportError(e);
      }
    }
  }

  /** Waits for the background work to finish (tests, and before a restore reads the counts). */
  async idle(): Promise<void> {
    while (this.#background !== undefined) await this.#background;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#background;
  }

  async #serverVersion(): Promise<unknown> {
    try {
      return await this.#host.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/room_keys/version`,
        schema: backupVersionResponseSchema,
      });
    } catch (e) {
      if (e instanceof MatrixError && e.errcode === "M_NOT_FOUND") return null;
      throw e;
    }
  }

  #accountDataEnabled(): boolean | undefined {
    return backupEnabledInAccountData((type) => this.#host.getAccountData(type));
  }

  /**
   * Records the user's choice under both names, as matrix-rust-sdk does: `m.key_backup`, and the
   * legacy flag that clients reading only it (older Element Web) go by. The legacy flag is written
   * when turning backup off, and when turning it on only if it holds anything but `false` (absent
   * is "not disabled" already). Each write is skipped when the account data says so already.
   */
  async #setEnabled(enabled: boolean): Promise<void> {
    const get = (type: string) => this.#host.getAccountData(type);
    if (get(KEY_BACKUP_ACCOUNT_DATA)?.enabled !== enabled) {
      await this.#record(KEY_BACKUP_ACCOUNT_DATA, { enabled });
    }
    const legacy = get(LEGACY_BACKUP_DISABLED_ACCOUNT_DATA)?.disabled;
    if (enabled ? legacy !== undefined && legacy !== false : legacy !== true) {
      await this.#record(LEGACY_BACKUP_DISABLED_ACCOUNT_DATA, { disabled: !enabled });
    }
  }

  async #record(type: string, content: JsonObject): Promise<void> {
    try {
      await this.#host.setAccountData(type, content);
    } catch (e) {
      this.#host.logger.warn(
        { err: errorSummary(e), type },
        "could not record the key backup choice in account data",
      );
    }
  }

  #reportStop(reason: BackupStopReason): void {
    const message =
      reason === "version_deleted"
        ? "the key backup version was deleted on the server; uploading stopped"
        : "the server has a new key backup version; uploading stopped (use its key to continue)";
    this.#host.logger.warn({ reason }, message);
    this.#host.reportError(new KeyBackupError("VERSION_CHANGED", message));
  }

  toJSON(): Record<string, unknown> {
    return { type: "KeyBackup" };
  }
}
