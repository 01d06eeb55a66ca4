// Errors of `client.crypto.recovery` that are not secret storage's own (those stay
// `SecretStorageError`s: WRONG_KEY, SECRET_MISSING, BAD_MAC, …). Each names the call that helps.
import type { RecoveryRepair } from "../../e2ee/index.ts";

export type RecoveryErrorCode =
  /** The account has a cross-signing identity whose private keys this device does not hold. */
  | "IDENTITY_NOT_HELD"
  /** A stored secret decrypts, but is not the key the account uses now (left by a reset elsewhere). */
  | "SECRET_STALE";

export class RecoveryError extends Error {
  override readonly name = "RecoveryError";
  readonly code: RecoveryErrorCode;
  /** The secret at fault, if one is. */
  readonly secret: string | undefined;
  /** The call that gets the account out of this state. */
  readonly repair: RecoveryRepair;

  constructor(
    code: RecoveryErrorCode,
    message: string,
    options: { secret?: string; repair: RecoveryRepair; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.secret = options.secret;
    this.repair = options.repair;
  }
}
