// What differs between the runtimes the client runs in. The package `imports` map picks one
// implementation by condition (`#client-platform`: `node.ts` on Node, `browser.ts` elsewhere), so a
// browser bundle never sees SQLite, the file system or Node built-ins.
import type { BackupRecordsDecryptor } from "../../e2ee/backup/restore.ts";
import type { CryptoStore } from "../../store/store.ts";
import type { SyncResponse } from "../../wire/index.ts";
import type { ClientStore } from "../client-store/store.ts";
import type { HttpTransport } from "../transport.ts";

/** A SQLite crypto store's place on disk (Node). */
export interface CryptoStoreLocation {
  /** Directory of the SQLite database (created, mode 0700, if missing). */
  readonly directory: string;
  /** File name inside `directory` (default `keyroom-crypto.sqlite3`). */
  readonly fileName?: string;
}

/**
 * Marks work as the sync loop's own (a response's handling, its listeners and what they await) so
 * that a `close()` or `stopSync()` called from it can tell: waiting for the handling from there
 * would wait for itself.
 */
export interface WorkContext {
  /** Runs `fn` as this context's work. */
  run<T>(fn: () => T): T;
  /** Runs `fn` as not this context's work (what it starts is not either). */
  exit<T>(fn: () => T): T;
  /** Whether the code running now is this context's work. */
  readonly active: boolean;
  /**
   * Whether `active` follows the work (Node). Where it cannot (browsers), the sync loop stops
   * waiting for a response's listeners once a stop is asked for (`ListenerWaits`), as a stop
   * awaited from one of them cannot be told from another.
   */
  readonly tracked: boolean;
}

export interface ClientPlatform {
  readonly name: "node" | "browser";
  /**
   * A new work context: on Node it follows the work through its awaits (AsyncLocalStorage);
   * browsers cannot tell (`active` is always false, `tracked` false).
   */
  workContext(): WorkContext;
  /** The client store when none is given: memory on Node, IndexedDB in browsers. */
  defaultClientStore(): ClientStore;
  /**
   * The JSON requests' transport when the app passes no `fetch`: `node:http` with keep-alive
   * agents on Node; none (the global `fetch`) in browsers.
   */
  httpTransport?(): HttpTransport;
  /**
   * A hand-written check of a common `/sync` response giving the schema's result faster, or
   * undefined to leave the body to the schema (`parseCommonSyncResponse`): on Node, where a bot's
   * process parses many; browsers keep the schema alone and the bundle smaller (3 KB minified).
   */
  readonly syncFastParse?: (json: unknown) => SyncResponse | undefined;
  /**
   * Decrypts a large backup restore's records off the client's thread (worker threads on Node;
   * none in browsers): see `RestoreOptions.decryptor`.
   */
  backupDecryptor?(): Promise<BackupRecordsDecryptor | undefined>;
  /**
   * Opens the crypto store at `location`, or this platform's default one for `userId` (SQLite
   * under `$XDG_DATA_HOME` on Node, IndexedDB in browsers). `deviceId` is undefined when the
   * store must already hold one (`restoreDeviceId`).
   */
  openCryptoStore(request: {
    readonly location: CryptoStoreLocation | undefined;
    readonly passphrase: string | undefined;
    readonly userId: string;
    readonly deviceId: string | undefined;
  }): Promise<CryptoStore>;
}
