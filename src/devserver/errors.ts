// Matrix errors as the Client-Server API shapes them: `{ errcode, error }` plus an HTTP status.

/** The Matrix error codes this server emits. */
export type MatrixErrcode =
  | "M_FORBIDDEN"
  | "M_UNKNOWN_TOKEN"
  | "M_MISSING_TOKEN"
  | "M_BAD_JSON"
  | "M_NOT_JSON"
  | "M_NOT_FOUND"
  | "M_UNRECOGNIZED"
  | "M_LIMIT_EXCEEDED"
  | "M_UNKNOWN"
  | "M_USER_IN_USE"
  | "M_INVALID_USERNAME"
  | "M_INVALID_PARAM"
  | "M_MISSING_PARAM"
  | "M_TOO_LARGE"
  | "M_ROOM_IN_USE"
  | "M_UNSUPPORTED_ROOM_VERSION"
  | "M_BAD_STATE"
  | "M_INVALID_SIGNATURE"
  | "M_WRONG_ROOM_KEYS_VERSION"
  | "M_USER_DEACTIVATED"
  | "M_CANNOT_OVERWRITE_MEDIA"
  | "M_NOT_YET_UPLOADED";

/** A request failure that the HTTP layer turns into a spec-shaped JSON error response. */
export class MatrixError extends Error {
  override readonly name = "MatrixError";
  readonly code: MatrixErrcode;
  readonly status: number;
  /** Extra top-level fields of the error body (e.g. `retry_after_ms`, `current_version`). */
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(status: number, code: MatrixErrcode, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }

  toBody(): Record<string, unknown> {
    return { errcode: this.code, error: this.message, ...this.extra };
  }
}

export const forbidden = (message: string): MatrixError => new MatrixError(403, "M_FORBIDDEN", message);
export const notFound = (message: string): MatrixError => new MatrixError(404, "M_NOT_FOUND", message);
export const badJson = (message: string): MatrixError => new MatrixError(400, "M_BAD_JSON", message);
export const invalidParam = (message: string): MatrixError =>
  new MatrixError(400, "M_INVALID_PARAM", message);

/**
 * A user-interactive-auth challenge: HTTP 401 with the flows the client may complete. Not an error in
 * the `errcode` sense unless a stage failed, in which case the spec adds `errcode`/`error` to the body.
 */
export class UiaChallenge extends Error {
  override readonly name = "UiaChallenge";
  readonly code = "UIA_REQUIRED";
  readonly body: Record<string, unknown>;
  constructor(body: Record<string, unknown>) {
    super("user-interactive authentication required");
    this.body = body;
  }
}
