// Client errors. Server refusals (`MatrixError`), transport failures (`NetworkError`) and server data
// that failed validation (`MalformedResponseError`) are distinct classes so callers can tell them
// apart; none of them ever carries an access token.
import { type MatrixErrorBody, matrixErrorBodySchema } from "../wire/index.ts";

/** The server answered with a Matrix error (`errcode`) or an HTTP error status. */
export class MatrixError extends Error {
  override readonly name = "MatrixError";
  /** Always `"MATRIX_ERROR"`; the server's code is `errcode`. */
  readonly code = "MATRIX_ERROR";
  readonly errcode: string;
  readonly httpStatus: number;
  /** From `retry_after_ms` or the `Retry-After` header, for M_LIMIT_EXCEEDED / 429. */
  readonly retryAfterMs: number | undefined;
  /** The parsed error body (never request data). */
  readonly body: Readonly<Record<string, unknown>>;

  /**
   * `body` is the parsed JSON error body when it was an object (a UIA challenge has no `errcode`
   * but its flows are needed), else undefined.
   */
  constructor(httpStatus: number, body: Record<string, unknown> | undefined, retryAfterMs?: number) {
    const known = knownFields(body);
    const errcode = known.errcode ?? (httpStatus === 429 ? "M_LIMIT_EXCEEDED" : "M_UNKNOWN");
    super(`${errcode} (HTTP ${httpStatus})${known.error ? `: ${known.error}` : ""}`);
    this.errcode = errcode;
    this.httpStatus = httpStatus;
    this.retryAfterMs = known.retry_after_ms ?? retryAfterMs;
    this.body = body ?? {};
  }

  get isRateLimited(): boolean {
    return this.errcode === "M_LIMIT_EXCEEDED" || this.httpStatus === 429;
  }
}

/** The request never got an HTTP answer (DNS, connection reset, timeout, abort). */
export class NetworkError extends Error {
  override readonly name = "NetworkError";
  readonly code: "NETWORK" | "TIMEOUT" | "ABORTED";
  constructor(code: NetworkError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The fields of an error body, each checked on its own: one of the wrong type (`"error": null`, a
 * fractional `retry_after_ms`) must not hide the others, least of all `errcode`
 * (`M_UNKNOWN_TOKEN` is how the client learns its session ended).
 */
function knownFields(body: Record<string, unknown> | undefined): Partial<MatrixErrorBody> {
  const known: Partial<MatrixErrorBody> = {};
  if (body === undefined) return known;
  for (const key of ["errcode", "error", "retry_after_ms", "soft_logout"] as const) {
    const field = matrixErrorBodySchema.shape[key].safeParse(body[key]);
    if (field.success && field.data !== undefined) Object.assign(known, { [key]: field.data });
  }
  return known;
}

/** The server answered, but the body was not what the API promises. */
export class MalformedResponseError extends Error {
  override readonly name = "MalformedResponseError";
  readonly code = "MALFORMED_RESPONSE";
  readonly httpStatus: number;
  /** Which endpoint (method and path template, no IDs or tokens). */
  readonly endpoint: string;
  /** Where validation failed, e.g. `rooms.join: expected object`. */
  readonly issues: readonly string[];
  constructor(endpoint: string, httpStatus: number, issues: readonly string[]) {
    super(`malformed response from ${endpoint} (HTTP ${httpStatus}): ${issues.slice(0, 3).join("; ")}`);
    this.endpoint = endpoint;
    this.httpStatus = httpStatus;
    this.issues = issues;
  }
}

/** A successful answer whose body is over the bound its request reads (`limit` bytes): not read. */
export class ResponseTooLargeError extends MalformedResponseError {
  /** The bound, in bytes. */
  readonly limit: number;
  constructor(endpoint: string, httpStatus: number, limit: number) {
    super(endpoint, httpStatus, [`body larger than ${limit} bytes`]);
    this.limit = limit;
  }
}

export type ClientErrorCode =
  | "NOT_LOGGED_IN"
  | "DISCOVERY_FAILED"
  | "INVALID_ARGUMENT"
  | "UNSUPPORTED_AUTH"
  /** The server asks for User-Interactive Auth and no password or callback was given. */
  | "AUTH_REQUIRED"
  | "CANNOT_DELETE_CURRENT_DEVICE"
  /**
   * (Client stores.) A stored record or file is damaged: not JSON, fails validation, a schema
   * newer than this Keyroom, or (SQLite) a damaged database file (SQLITE_CORRUPT, SQLITE_NOTADB,
   * SQLite's error as `cause`).
   */
  | "STORE_CORRUPT"
  /**
   * (IndexedDB and SQLite client stores.) The store's connection is closed: the browser closed it
   * (site data cleared, the backing store lost: reload the page), or (SQLite) it was used after
   * `close()`. The DOMException or SQLite's error is the `cause`.
   */
  | "STORE_CLOSED"
  /**
   * (IndexedDB, SQLite and file client stores.) The back end refused: the quota or disk used up, an
   * aborted transaction, an internal error, (SQLite) a database locked by another process
   * (SQLITE_BUSY), (file) its lock file held by a live process past `FILE_LOCK_WAIT_MS` or failing, read-only or failing I/O. Nothing of a failed save was saved. The DOMException
   * or SQLite's error is the `cause`; the message names it (SQLite's code) but never quotes its message.
   */
  | "STORE_FAILED"
  /**
   * Another tab or process saved its session to the shared client store while this login ran:
   * this login's session was not saved over it (a device the login created is logged out again).
   */
  | "SESSION_CONFLICT"
  /**
   * `login`, `loginWithToken`, `register` or `restore` called from a listener of the sync response
   * being handled (or work it awaits; told on Node only): starting a session stops the loop, which
   * waits for that handling, which waits for the listener. Call it once the listener returned.
   */
  | "IN_SYNC_HANDLING"
  /**
   * `logout()`: the server did not log the session out (a network failure, a 5xx: the server's
   * error, or the `NetworkError`, is the `cause`; `isTransientError(e.cause)` says whether to try
   * again). The session goes on: still stored, the sync loop started again if it ran, the
   * dehydration schedule resumed.
   */
  | "LOGOUT_FAILED"
  /**
   * (Browsers.) A `syncOnce()` or `feedSync()` whose response's listeners a stop (`close()`,
   * `logout()`, `stopSync()`) did not wait for: the response's position is not saved, and it
   * comes again at the next start.
   */
  | "STOPPED"
  | "TOO_LARGE"
  | "ENCRYPTION_UNAVAILABLE";

/** Misuse of the client or a local failure (not a server answer). */
export class ClientError extends Error {
  override readonly name = "ClientError";
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Errors worth retrying: the network, rate limits and 5xx. A 4xx will fail the same way again. */
export function isTransientError(err: unknown): boolean {
  if (err instanceof NetworkError) return err.code !== "ABORTED";
  if (err instanceof MatrixError) return err.isRateLimited || err.httpStatus >= 500;
  return false;
}
