// Matrix errors as the Client-Server API shapes them (`MatrixErrorBody` of src/wire), plus an HTTP status.
import type { MatrixErrcode, MatrixErrorBody } from "../wire/errors.ts";

export type { MatrixErrcode };

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

  toBody(): MatrixErrorBody {
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
