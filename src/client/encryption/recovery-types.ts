// The shapes of `client.crypto.recovery`'s calls, and what it needs of the driver around it.
import type {
  CrossSigningStatus,
  OlmMachine,
  UnlockedSecretStorageKey,
  UserIdentityInfo,
} from "../../e2ee/index.ts";
import type { HttpClient } from "../http.ts";
import type { UiaAuth } from "../uia.ts";
import type { SecretStorage } from "./secret-storage.ts";
import type { SecretStorageUnlock } from "./secret-storage-types.ts";

/** What recovery needs of the key backup (`client.crypto.backup`). */
export interface RecoveryBackup {
  /** A new version signed by this device and our master key; uploads go to it. */
  createVersion(): Promise<{ readonly version: string; readonly privateKey: Uint8Array }>;
  /** Uses the server's current version with this key (refused if it is not that version's key). */
  useKey(key: Uint8Array): Promise<unknown>;
  /**
   * The version this device uses (checked with the server), whether it holds its key, and the
   * user's choice in account data (false: backup turned off, so recovery makes no new version).
   */
  status(): Promise<{
    readonly version: string | undefined;
    readonly hasKey: boolean;
    readonly enabledInAccountData?: boolean | undefined;
  }>;
  /** The private key of the version this device uses, when held. */
  privateKey(): Promise<Uint8Array | undefined>;
  /** Restores every key from the backup. */
  restore(options: { readonly onProgress?: (done: number, total: number) => void }): Promise<{
    readonly version: string;
    readonly imported: number;
    readonly download: "whole" | "per_room";
    readonly roomsTooLarge: readonly string[];
  }>;
}

/** What recovery needs of the encryption driver. */
export interface RecoveryHost {
  readonly http: HttpClient;
  readonly userId: string;
  readonly machine: OlmMachine;
  readonly secretStorage: SecretStorage;
  readonly backup: RecoveryBackup;
  bootstrapCrossSigning(options: { auth?: UiaAuth; reset?: boolean }): Promise<CrossSigningStatus>;
  crossSigningStatus(): Promise<CrossSigningStatus>;
  getUserIdentity(userId: string): Promise<UserIdentityInfo | undefined>;
  /** Sends what the engine queued (signature uploads, key queries). */
  flush(): Promise<void>;
  /** Runs `work` as one unit of work on the crypto store (under its lease; units nest). */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /**
   * After a new default secret storage key (and, with `identityReset`, new cross-signing keys):
   * the running dehydration schedule moves to them. Reports its own errors; never throws.
   */
  keysReplaced?(change: {
    secretStorageKey: UnlockedSecretStorageKey;
    identityReset: boolean;
  }): Promise<void>;
}

export interface NewRecoveryKeyOptions {
  /** Make the key from this passphrase (`m.pbkdf2`, 500 000 iterations); a recovery key is still returned. */
  readonly passphrase?: string;
  /** Passphrase derivation progress, 0 to 1. */
  readonly onProgress?: (fraction: number) => void;
  /** PBKDF2 iterations for the passphrase (default and least 500 000, `MIN_PASSPHRASE_ITERATIONS`). */
  readonly passphraseIterations?: number;
  /**
   * The current key, when known: secrets this device does not hold itself (the dehydrated-device
   * key) are read with it and carried over to the new key (the old key no longer opens them).
   * Without it they stay readable with the old key only.
   */
  readonly current?: SecretStorageUnlock;
}

export interface EnableRecoveryOptions extends NewRecoveryKeyOptions {
  /** User-Interactive Auth for uploading cross-signing keys, if the account has none yet. */
  readonly auth?: UiaAuth;
}

export interface RecoveryKeyResult {
  /** Shown once: never stored by Keyroom. */
  readonly recoveryKey: string;
  readonly keyId: string;
}

export interface RecoverOptions {
  /** Restore the key backup before returning (default true). */
  readonly restore?: boolean;
  /** Restore progress: keys handled, of all the backup returned. */
  readonly onRestoreProgress?: (done: number, total: number) => void;
}

export interface RecoverResult {
  /** This device now carries our self-signing key's signature. */
  readonly crossSigned: boolean;
  /** The backup version this device now uses (undefined: the account has no backup). */
  readonly backupVersion: string | undefined;
  /** Room keys restored from the backup (new or better than what this device had). */
  readonly restored: number;
  /**
   * How the backup came down (`RestoreBackupResult.download`): `per_room` when it was too large
   * for one answer; undefined when nothing was restored.
   */
  readonly restoreDownload: "whole" | "per_room" | undefined;
  /** Rooms whose keys were too large to download even room by room: not restored. */
  readonly restoreRoomsTooLarge: readonly string[];
  /**
   * Secrets this device held but secret storage lacked, written back (none when the key's
   * passphrase parameters are weak: nothing new is written under such a key).
   */
  readonly repaired: readonly string[];
}
