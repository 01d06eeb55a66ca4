// The one error type the peer drivers throw, so tests can tell a timeout from a peer crash.
import { withinBudget } from "../budget.ts";

export type PeerErrorCode =
  /** A `wait*` call did not see what it waited for in time. */
  | "TIMEOUT"
  /** The peer's process (nio) exited or its pipe broke. */
  | "PEER_EXITED"
  /** The peer was used after `close()`. */
  | "CLOSED"
  /** The peer (or the server through it) refused an operation; `message` says which. */
  | "REQUEST_FAILED"
  /** The nio process wrote a line that is not a valid response. */
  | "PROTOCOL";

export class PeerError extends Error {
  override readonly name = "PeerError";
  /** The Matrix `errcode` when the homeserver refused (`REQUEST_FAILED`), e.g. `M_FORBIDDEN`. */
  readonly errcode: string | undefined;
  /** The HTTP status of that refusal, when the client library reports it. */
  readonly httpStatus: number | undefined;
  constructor(
    readonly code: PeerErrorCode,
    message: string,
    refusal: { errcode?: string | undefined; httpStatus?: number | undefined } = {},
  ) {
    super(message);
    this.errcode = refusal.errcode;
    this.httpStatus = refusal.httpStatus;
  }
}

/**
 * Races `promise` against a budget of `timeoutMs` (enough on an idle machine) stretched by the
 * machine's load (test/support/budget.ts); rejects with `PeerError("TIMEOUT", what)` once spent.
 * The timer never outlives it.
 */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: () => string): Promise<T> {
  return withinBudget(
    promise,
    timeoutMs,
    (spent) =>
      new PeerError("TIMEOUT", `${what()} (after ${spent} ms; budget ${timeoutMs} ms scaled by load)`),
  );
}
