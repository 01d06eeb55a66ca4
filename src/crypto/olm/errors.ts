/**
 * Every failure of the Olm layer is an `OlmError` with a `code` from this union. Decoders and
 * decryptors never throw anything else, whatever bytes arrive. Messages never carry key material
 * or plaintext.
 */
export type OlmErrorCode =
  /** The message's version byte is not 3. */
  | "BAD_MESSAGE_VERSION"
  /** The message is not valid base64, is truncated, or a protobuf field is missing or malformed. */
  | "BAD_MESSAGE_FORMAT"
  /** The message type is neither 0 (pre-key) nor 1 (normal), or the wrong one for the operation. */
  | "BAD_MESSAGE_TYPE"
  /** The message authentication code does not match: wrong session, or tampered message. */
  | "BAD_MESSAGE_MAC"
  /** The message's chain index was already used, or its skipped key has been dropped. */
  | "BAD_MESSAGE_KEY_ID"
  /** The message's chain index is further ahead than `MAX_MESSAGE_GAP`. */
  | "MESSAGE_INDEX_TOO_FAR"
  /** A new ratchet key arrived before we ever sent on this session (the peer cannot have it). */
  | "UNKNOWN_RATCHET_KEY"
  /** The MAC matched but the AES-CBC payload did not decrypt (bad padding or length). */
  | "DECRYPTION_FAILED"
  /** A public key is not 32 bytes of unpadded base64. */
  | "BAD_KEY"
  /** A Diffie-Hellman exchange produced an all-zero secret (a low-order public key). */
  | "NON_CONTRIBUTORY_KEY"
  /** A pre-key message names a one-time or fallback key this account does not hold. */
  | "MISSING_ONE_TIME_KEY"
  /** A pre-key message's identity key is not the one the caller expected. */
  | "MISMATCHED_IDENTITY_KEY"
  /** A caller-supplied argument is out of range (e.g. a negative key count). */
  | "BAD_ARGUMENT"
  /** A pickle record is malformed or of an unknown version. */
  | "BAD_PICKLE";

export class OlmError extends Error {
  override readonly name = "OlmError";
  readonly code: OlmErrorCode;

  constructor(code: OlmErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
