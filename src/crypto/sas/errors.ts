/** Every failure of the SAS primitive is a `SasError` with a `code` from this union. */
export type SasErrorCode =
  /** The other side's public key is not 32 bytes of unpadded base64. */
  | "BAD_KEY"
  /** The agreement gave an all-zero secret: the other side sent a low-order point. */
  | "NON_CONTRIBUTORY_KEY"
  /** Bytes or MACs were asked for before `setTheirPublicKey`. */
  | "THEIR_KEY_NOT_SET"
  /** `setTheirPublicKey` was called a second time (one SAS object serves one verification). */
  | "THEIR_KEY_ALREADY_SET"
  /** A caller-supplied argument has the wrong type, form or range. */
  | "BAD_ARGUMENT";

export class SasError extends Error {
  override readonly name = "SasError";
  readonly code: SasErrorCode;

  constructor(code: SasErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
