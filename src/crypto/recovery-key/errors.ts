/** Why a recovery key (typed or pasted by a user) was refused. Messages never contain the key. */
export type RecoveryKeyErrorCode =
  /** A character outside the Bitcoin base58 alphabet (0, O, I, l and punctuation are not in it). */
  | "BAD_BASE58"
  /** Decodes to the wrong number of bytes: a key cut short, or extra characters. */
  | "BAD_LENGTH"
  /** The first two bytes are not 0x8B 0x01: not a Matrix recovery key. */
  | "BAD_PREFIX"
  /** The parity byte does not match: a mistyped character. */
  | "BAD_PARITY"
  /** A caller passed a key that is not 32 bytes. */
  | "BAD_ARGUMENT";

export class RecoveryKeyError extends Error {
  override readonly name = "RecoveryKeyError";
  readonly code: RecoveryKeyErrorCode;

  constructor(code: RecoveryKeyErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
