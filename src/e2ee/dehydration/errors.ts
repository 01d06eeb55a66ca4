/**
 * The dehydrated-device error, in a file of its own so that the client's entry can export it
 * without the dehydration code (loaded on first use).
 */

export type DehydrationErrorCode =
  /** A server response does not have the MSC's shape. */
  | "BAD_RESPONSE"
  /** The device was dehydrated with another format (e.g. the libolm-pickle v1). */
  | "UNSUPPORTED_ALGORITHM"
  /** The key does not open the pickle (wrong key, or the pickle was altered). */
  | "WRONG_KEY"
  /** The pickle opens but is malformed. */
  | "BAD_PICKLE"
  /**
   * This device does not hold our published self-signing key: a dehydrated device must be
   * cross-signed (MSC3814), and clients share no room keys with one that is not.
   */
  | "NOT_CROSS_SIGNED"
  | "BAD_ARGUMENT";

export class DehydrationError extends Error {
  override readonly name = "DehydrationError";
  readonly code: DehydrationErrorCode;

  constructor(code: DehydrationErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
