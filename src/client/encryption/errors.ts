// Errors of the client's encryption driver. Messages name rooms, users and devices, never keys,
// plaintext or tokens.

export type ClientCryptoErrorCode =
  /** The client was created without `encryption`. */
  | "NOT_ENABLED"
  /** `restoreDeviceId` needs the full user ID (`@user:server`) to find the stored device. */
  | "RESTORE_NEEDS_USER_ID"
  /** The room members' device lists could not be fetched, so the room key cannot be shared safely. */
  | "DEVICE_LIST_UNAVAILABLE"
  /** The room key's to-device messages could not all be sent; the event was not encrypted. */
  | "ROOM_KEY_NOT_SHARED"
  /** `encryption.store` is a factory that threw, or returned something that is not a `CryptoStore`. */
  | "STORE_FACTORY_FAILED"
  /** `restoreDeviceId` needs a store it can read before login: a location or an instance, not a factory. */
  | "RESTORE_NEEDS_STORE"
  /** The store option cannot work in this runtime (a SQLite directory outside Node). */
  | "STORE_UNAVAILABLE"
  /** The content has no `file` (or `url`) to download. */
  | "NO_ATTACHMENT"
  /**
   * Encryption is configured but could not start (e.g. the store is locked or belongs to another
   * device): syncing is refused, since processing a sync without it would lose its room keys, and
   * so are room message sends, since whether the room is encrypted is unknown (the start's error
   * is the `cause`).
   */
  | "NOT_STARTED"
  /** The encryption driver was closed (client closed or logged out); sends are refused. */
  | "CLOSED";

export class ClientCryptoError extends Error {
  override readonly name = "ClientCryptoError";
  readonly code: ClientCryptoErrorCode;

  constructor(code: ClientCryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
