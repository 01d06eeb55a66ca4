/**
 * Every failure of the Megolm layer is a `MegolmError` with a `code` from this union. Decoders and
 * decryptors never throw anything else, whatever bytes arrive. Messages never carry key material
 * or plaintext.
 */
export type MegolmErrorCode =
  /** The message is not valid base64, is truncated, or a field is missing or malformed. */
  | "BAD_MESSAGE_FORMAT"
  /** The message's version byte is not 3 (the truncated-MAC Megolm format). */
  | "BAD_MESSAGE_VERSION"
  /** The Ed25519 signature over a message or a v2 session key does not verify. */
  | "BAD_SIGNATURE"
  /** The truncated HMAC does not match: wrong ratchet, or a tampered message. */
  | "BAD_MAC"
  /** The MAC matched but the AES-CBC payload did not decrypt (bad padding or length). */
  | "DECRYPTION_FAILED"
  /** The message index is below the session's first known index. */
  | "UNKNOWN_MESSAGE_INDEX"
  /** A session key (v2) or exported key (v1) is malformed, of the wrong version, or badly signed. */
  | "BAD_SESSION_KEY"
  /** The outbound session used up every 32-bit message index. */
  | "SESSION_EXHAUSTED"
  /** A caller-supplied argument is out of range (e.g. a negative index, a lone surrogate). */
  | "BAD_ARGUMENT"
  /** A pickle record is malformed or of an unknown version. */
  | "BAD_PICKLE";

export class MegolmError extends Error {
  override readonly name = "MegolmError";
  readonly code: MegolmErrorCode;

  constructor(code: MegolmErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
