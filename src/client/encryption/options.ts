// `encryption` options of the client, and opening the crypto store they name. The default store and
// locations on disk are the platform's (`#client-platform`: SQLite on Node, IndexedDB in browsers),
// so a browser bundle never includes the SQLite back end.
import { platform } from "#client-platform";

import type { SenderRequirement, ShareWith } from "../../e2ee/index.ts";
import { StoreError, StoreMismatchError } from "../../store/errors.ts";
import type { CryptoStore } from "../../store/store.ts";
import type { CryptoStoreLocation } from "../platform/types.ts";
import { ClientCryptoError } from "./errors.ts";
import type { LeaseOptions } from "./lease.ts";

/**
 * Opens the crypto store of an account once the server told the device ID (at login, register or
 * restore). The client owns what it returns: it closes it on `close()` and `logout()`.
 */
export type CryptoStoreFactory = (account: {
  readonly userId: string;
  readonly deviceId: string;
}) => CryptoStore | Promise<CryptoStore>;

/**
 * Where the crypto store lives: a SQLite database (Node), a `CryptoStore` you opened, or a
 * factory that opens one when the device is known.
 */
export type CryptoStoreOption = CryptoStoreLocation | CryptoStore | CryptoStoreFactory;

export interface EncryptionOptions {
  /**
   * The crypto store. Default on Node: SQLite in `$XDG_DATA_HOME/keyroom/<user>` (or
   * `~/.local/share/keyroom/<user>`); in browsers: IndexedDB database `keyroom-crypto:<user>`. A `CryptoStore` instance is used as given and left open when
   * the client closes (you opened it, you close it); a factory's store is closed by the client.
   */
  readonly store?: CryptoStoreOption;
  /**
   * Encrypts the default store's secrets with a key derived from this (else, on Node, a key file
   * beside the SQLite store; in browsers, a non-extractable Web Crypto key kept with it).
   */
  readonly passphrase?: string;
  /**
   * Log in with the device ID the crypto store remembers for the user (pass a full user ID to
   * `login`). Without it, a login that gets a new device from the server fails on an existing store.
   */
  readonly restoreDeviceId?: boolean;
  /** Refuse to send into rooms with devices never marked verified / blacklisted / ignored. */
  readonly verifyDevices?: boolean;
  /** Share room keys only with devices marked verified (others get `m.room_key.withheld`). */
  readonly onlyVerifiedDevices?: boolean;
  /**
   * Which devices get room keys: `"all"` (default), `"cross_signed"` (devices their owner
   * cross-signed, or that we verified), or `"verified"`. Excluded devices get
   * `m.room_key.withheld` with `m.unverified`. See docs/verification.md.
   */
  readonly shareWith?: ShareWith;
  /**
   * Events from devices their owner has not cross-signed: `"accept"` (default; marked with
   * `encryption.senderCrossSigned: false`) or `"refuse"` (undecryptable, `SENDER_NOT_CROSS_SIGNED`).
   */
  readonly senderRequirement?: SenderRequirement;
  /**
   * Sends into an encrypted room fail with `VerifiedUserProblemError` (naming the users and
   * devices, not retried) instead of giving or withholding the room key while a user we verified
   * changed identity since, or has a device their identity did not sign. See docs/verification.md.
   */
  readonly errorOnVerifiedUserProblems?: boolean;
  /**
   * Sharing the store with other processes or tabs (see docs/stores.md, "Sharing a store"):
   * `durationMs`, how long a taken lease lasts unless renewed (default 10 s; a process that dies
   * holding it blocks the others this long); `timeoutMs`, how long a unit of work waits for
   * another's lease before failing with `StoreLockedError("LEASE_TIMEOUT")` (default 120 s);
   * `lingerMs`, how long it stays held after the last unit of work for the next (default 25 ms).
   */
  readonly lease?: LeaseOptions;
}

export function resolveEncryptionOptions(
  option: true | EncryptionOptions | undefined,
): EncryptionOptions | undefined {
  if (option === undefined) return undefined;
  return option === true ? {} : option;
}

function isCryptoStore(store: unknown): store is CryptoStore {
  return (
    typeof store === "object" &&
    store !== null &&
    "loadIdentity" in store &&
    typeof store.loadIdentity === "function" &&
    "saveChanges" in store &&
    typeof store.saveChanges === "function"
  );
}

/** A store must belong to the account it is opened for (the device too, once known). */
async function checkIdentity(
  store: CryptoStore,
  userId: string,
  deviceId: string | undefined,
): Promise<void> {
  const identity = await store.loadIdentity();
  const requested = { userId, deviceId };
  if (identity.userId !== userId) throw new StoreMismatchError("USER_MISMATCH", identity, requested);
  if (deviceId !== undefined && identity.deviceId !== deviceId) {
    throw new StoreMismatchError("DEVICE_MISMATCH", identity, requested);
  }
}

async function openFromFactory(
  factory: CryptoStoreFactory,
  userId: string,
  deviceId: string,
): Promise<CryptoStore> {
  let store: unknown;
  try {
    store = await factory({ userId, deviceId });
  } catch (e) {
    throw new ClientCryptoError("STORE_FACTORY_FAILED", "the encryption.store factory threw", { cause: e });
  }
  if (!isCryptoStore(store)) {
    throw new ClientCryptoError(
      "STORE_FACTORY_FAILED",
      "the encryption.store factory did not return a CryptoStore",
    );
  }
  try {
    await checkIdentity(store, userId, deviceId);
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return store;
}

/** A store the client opened (and closes), or one it was given (and leaves open). */
export interface OpenedStore {
  readonly store: CryptoStore;
  readonly owned: boolean;
}

/**
 * Opens the configured store for `userId` (and `deviceId`; without it, the store must already hold
 * one). Throws `StoreMismatchError` if it belongs to another user or device.
 */
export async function openCryptoStore(
  options: EncryptionOptions,
  userId: string,
  deviceId: string | undefined,
): Promise<OpenedStore> {
  const configured = options.store;
  if (typeof configured === "function") {
    if (deviceId === undefined) {
      throw new ClientCryptoError(
        "RESTORE_NEEDS_STORE",
        "restoreDeviceId reads the device ID from the store before login: pass a store or a location, not a factory",
      );
    }
    return { store: await openFromFactory(configured, userId, deviceId), owned: true };
  }
  if (configured !== undefined && isCryptoStore(configured)) {
    await checkIdentity(configured, userId, deviceId);
    return { store: configured, owned: false };
  }
  const store = await platform.openCryptoStore({
    location: configured,
    passphrase: options.passphrase,
    userId,
    deviceId,
  });
  return { store, owned: true };
}

/**
 * The device ID the store remembers for `userId`, or undefined for a new store. The store is
 * returned open (to be reused by the login that follows) when it holds an identity.
 */
export async function openStoredIdentity(
  options: EncryptionOptions,
  userId: string,
): Promise<OpenedStore | undefined> {
  if (!userId.startsWith("@") || !userId.includes(":")) {
    throw new ClientCryptoError(
      "RESTORE_NEEDS_USER_ID",
      "restoreDeviceId needs the full user ID (@user:server) to find the stored device",
    );
  }
  try {
    return await openCryptoStore(options, userId, undefined);
  } catch (e) {
    if (e instanceof StoreError && e.code === "IDENTITY_REQUIRED") return undefined;
    throw e;
  }
}
