/** Errors of cross-signing operations (one family, codes below); messages never carry keys. */
export type CrossSigningErrorCode =
  /** The account has a cross-signing identity this device holds no key for (bootstrap with `reset`). */
  | "IDENTITY_EXISTS"
  /** The user has no cross-signing identity we know of (query their keys first). */
  | "NO_IDENTITY"
  /** A private key does not match the published public key it should belong to. */
  | "KEY_MISMATCH"
  /** No such device is known. */
  | "UNKNOWN_DEVICE"
  /** The user's master key is not the one the caller checked (it changed in between). */
  | "IDENTITY_CHANGED";

export class CrossSigningError extends Error {
  override readonly name = "CrossSigningError";
  readonly code: CrossSigningErrorCode;

  constructor(code: CrossSigningErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
