/**
 * Store errors. Each family has its own class carrying a `code`; messages name the store's
 * location and identities (never keys, pickles or secrets).
 */

/** Why a store operation failed. */
export type StoreErrorCode =
  /** A record handed to `saveChanges`, or read back from the back end, is malformed. */
  | "INVALID_RECORD"
  /** The store was opened without a device ID and holds none yet. */
  | "IDENTITY_REQUIRED"
  /** The schema on disk is newer than this version of Keyroom understands. */
  | "SCHEMA_TOO_NEW"
  /** A schema migration failed; the store was left at its previous version. */
  | "MIGRATION_FAILED"
  /**
   * The store was used after `close()`, or (IndexedDB) after another context upgraded or deleted
   * its database, which closes it, or after the browser closed the connection (site data cleared).
   */
  | "CLOSED"
  /** An option is out of range (e.g. an empty file name, a batch limit below 1). */
  | "BAD_OPTION"
  /** The back end refused an operation (I/O error, quota, aborted transaction). */
  | "BACKEND"
  /**
   * The store's file is damaged (e.g. truncated to zero bytes). It is not opened as a new store:
   * that would bring the device back under its old ID with new identity keys.
   */
  | "CORRUPT";

export class StoreError extends Error {
  override readonly name: string = "StoreError";
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export type StoreMismatchErrorCode = "USER_MISMATCH" | "DEVICE_MISMATCH";

/** The store belongs to another user or device than the one opening it. */
export class StoreMismatchError extends Error {
  override readonly name = "StoreMismatchError";
  readonly code: StoreMismatchErrorCode;
  /** What the store holds. */
  readonly stored: { readonly userId: string; readonly deviceId: string };
  /** What the caller asked for. */
  readonly requested: { readonly userId: string; readonly deviceId: string | undefined };

  constructor(
    code: StoreMismatchErrorCode,
    stored: { userId: string; deviceId: string },
    requested: { userId: string; deviceId: string | undefined },
  ) {
    super(
      code === "USER_MISMATCH"
        ? `this crypto store belongs to ${stored.userId} (device ${stored.deviceId}), not ${requested.userId}; ` +
            "use a separate store location per account"
        : `this crypto store belongs to device ${stored.deviceId} of ${stored.userId}, not device ${requested.deviceId}; ` +
            "log in again with the stored device ID (see loadIdentity) or use a new store location",
    );
    this.code = code;
    this.stored = stored;
    this.requested = requested;
  }
}

export type StoreLockedErrorCode =
  /** Another process or client holds the store, and this one cannot share it (memory store, an IndexedDB upgrade). */
  | "LOCKED"
  /** The store's lease (see `StoreLease`) was not free within the wait budget (`leaseTimeoutMs`). */
  | "LEASE_TIMEOUT"
  /** Another process took the store since this one last held it: what this one holds in memory may be old. */
  | "STALE";

const LOCKED_MESSAGES: Readonly<Record<StoreLockedErrorCode, string>> = {
  LOCKED:
    "is in use by another process or client; only one may use this store at a time " +
    "(close it there first, or use another store location)",
  LEASE_TIMEOUT:
    "stayed leased by another process for longer than this one may wait (leaseTimeoutMs); " +
    "that process may be stuck, or the budget is too short for this machine",
  STALE:
    "was written by another process since this one last held its lease; nothing was saved. " +
    "Take the lease (which reloads) and try again",
};

/** Another process (or another open handle in this one) is using the store, or took it since. */
export class StoreLockedError extends Error {
  override readonly name = "StoreLockedError";
  readonly code: StoreLockedErrorCode;
  readonly location: string;

  constructor(location: string, options?: { cause?: unknown; code?: StoreLockedErrorCode }) {
    const code = options?.code ?? "LOCKED";
    super(`the crypto store at ${location} ${LOCKED_MESSAGES[code]}`, options);
    this.code = code;
    this.location = location;
  }
}

export type StoreKeyErrorCode =
  /** The passphrase (or raw key) does not unwrap the store key. */
  | "WRONG_KEY"
  /** The store was created with a passphrase/key and opened without one, or the other way round. */
  | "KEY_KIND_MISMATCH"
  /** The key file that protects this store is missing. */
  | "KEY_FILE_MISSING"
  /** The key file is readable by other users, or malformed. */
  | "KEY_FILE_INSECURE"
  | "KEY_FILE_MALFORMED"
  /** A stored ciphertext failed its MAC check: the store was tampered with or corrupted. */
  | "TAMPERED"
  /** The stored key parameters are malformed or out of range. */
  | "BAD_KEY_PARAMETERS";

/** The store's encryption key could not be obtained, or a ciphertext did not authenticate. */
export class StoreKeyError extends Error {
  override readonly name = "StoreKeyError";
  readonly code: StoreKeyErrorCode;

  constructor(code: StoreKeyErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Whether a record read back is damaged on its own (it failed authentication, or is malformed):
 * the other records, and the store, are still fine.
 */
export function isDamagedRecord(e: unknown): boolean {
  return (
    (e instanceof StoreKeyError && e.code === "TAMPERED") ||
    (e instanceof StoreError && e.code === "INVALID_RECORD")
  );
}

/**
 * `read()`, or, when it throws because the record is damaged (`isDamagedRecord`) and the caller
 * passed `unreadable`, undefined with `key` pushed there: the reads that take an `unreadable` list
 * leave a damaged row out instead of failing on it. Any other error is thrown.
 */
export function readUnlessDamaged<R, K>(
  read: () => R,
  key: () => K,
  unreadable: K[] | undefined,
): R | undefined {
  try {
    return read();
  } catch (e) {
    if (unreadable === undefined || !isDamagedRecord(e)) throw e;
    unreadable.push(key());
    return undefined;
  }
}
