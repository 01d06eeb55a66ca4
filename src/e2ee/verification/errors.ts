/** Failures of the verification API (not of a flow: a flow that fails is cancelled, with a code). */
export type VerificationErrorCode =
  /** No flow with this key, or it is over. */
  | "UNKNOWN_FLOW"
  /** The call does not fit the flow's state (e.g. `confirm` before the SAS is known). */
  | "WRONG_STATE"
  /** A scanned QR payload is malformed. */
  | "BAD_QR_CODE"
  /** Too many flows at once (`MAX_VERIFICATION_FLOWS`, `MAX_FLOWS_PER_USER`). */
  | "TOO_MANY_FLOWS"
  /** A caller-supplied argument is malformed. */
  | "BAD_ARGUMENT";

export class VerificationError extends Error {
  override readonly name = "VerificationError";
  readonly code: VerificationErrorCode;

  constructor(code: VerificationErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
