/**
 * Every failure of backup PK encryption is a `PkError` with a `code` from this union. Messages
 * never carry key material or plaintext.
 */
export type PkErrorCode =
  /** A public key is not 32 bytes of base64, or a private key is not 32 bytes. */
  | "BAD_KEY"
  /** The agreement gave an all-zero secret: a low-order ephemeral or recipient key. */
  | "NON_CONTRIBUTORY_KEY"
  /** A message field is missing, not a string, not base64, or of the wrong length. */
  | "BAD_MESSAGE_FORMAT"
  /** The MAC does not match: wrong private key (or a message made for another key). */
  | "BAD_MAC"
  /** The MAC matched but the AES-CBC payload did not decrypt (bad padding or length). */
  | "DECRYPTION_FAILED"
  /** The decrypted bytes are not UTF-8 (only from `decryptString`). */
  | "BAD_PLAINTEXT"
  /** A caller-supplied argument has the wrong type or form. */
  | "BAD_ARGUMENT"
  /** A pickle record is malformed or of an unknown version. */
  | "BAD_PICKLE";

export class PkError extends Error {
  override readonly name = "PkError";
  readonly code: PkErrorCode;

  constructor(code: PkErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
