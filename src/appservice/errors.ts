// Errors of `keyroom/appservice`: one class, a code per failure, never a secret in the message.

export type AppserviceErrorCode =
  /** The homeserver's request carried no `hs_token`. */
  | "MISSING_TOKEN"
  /** The homeserver's request carried a token that is not our `hs_token`. */
  | "BAD_TOKEN"
  /** A transaction body that is not JSON. */
  | "NOT_JSON"
  /** A transaction (or ping) body that is JSON but not a transaction (or ping), or breaks a bound. */
  | "BAD_TRANSACTION"
  /** A body or an ID over its limit. */
  | "TOO_LARGE"
  /** A user outside the appservice's user namespaces. */
  | "NOT_IN_NAMESPACE"
  /** The homeserver refused to create the user's device. */
  | "DEVICE_SETUP_FAILED"
  /** A transaction arrived before `start()` finished (answered 500: the homeserver retries it). */
  | "NOT_STARTED"
  /** `listen()` on an appservice that listens already. */
  | "LISTENING"
  /** Hold mode without a `dataDir` to hold room events in. */
  | "NO_DATA_DIR"
  /** Hold mode holds `MAX_HELD_TRANSACTIONS` already (answered 500: the homeserver retries it). */
  | "HOLD_FULL"
  /** `pingHomeserver` with the transaction ID of a ping of this appservice's still under way. */
  | "PING_UNDER_WAY"
  /** The appservice was closed. */
  | "CLOSED";

export class AppserviceError extends Error {
  override readonly name = "AppserviceError";
  readonly code: AppserviceErrorCode;
  constructor(code: AppserviceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
