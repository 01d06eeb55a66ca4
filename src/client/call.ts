// One API call as every part of the client makes it: rate limits are retried (the server did not
// act on the request); idempotent requests are also retried on network errors and 5xx.
import type * as z from "../wire/zod.ts";
import { type BackoffPolicy, withRetry } from "./backoff.ts";
import type { Clock } from "./clock.ts";
import { MatrixError, NetworkError } from "./errors.ts";
import type { HttpClient, RequestOptions } from "./http.ts";
import type { Logger } from "./logger.ts";

/** Retries for one-shot API calls. */
const CALL_RETRY: BackoffPolicy = Object.freeze({ baseMs: 500, maxMs: 10_000, maxAttempts: 4 });

export type ApiCall = <S extends z.ZodMiniType>(
  req: RequestOptions<S>,
  idempotent?: boolean,
) => Promise<z.output<S>>;

export function apiCall(http: HttpClient, clock: Clock, logger: Logger): ApiCall {
  return (req, idempotent = false) =>
    withRetry(() => http.request(req), {
      policy: CALL_RETRY,
      clock,
      shouldRetry: (err) =>
        err instanceof MatrixError
          ? err.isRateLimited || (idempotent && err.httpStatus >= 500)
          : idempotent && err instanceof NetworkError && err.code !== "ABORTED",
      onRetry: (err, attempt, delayMs) =>
        logger.debug(
          {
            endpoint: req.path.template,
            attempt,
            delayMs,
            errcode: err instanceof MatrixError ? err.errcode : undefined,
          },
          "retrying",
        ),
    });
}
