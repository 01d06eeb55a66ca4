// Exponential backoff with full jitter, and a retry helper that honours rate-limit hints.
import type { Clock } from "./clock.ts";
import { isTransientError, MatrixError } from "./errors.ts";

export interface BackoffPolicy {
  /** First delay ceiling. */
  baseMs: number;
  /** Largest delay ceiling. */
  maxMs: number;
  /**
   * Attempts in total (first try included); `Infinity` retries forever (the sync loop). Rate-limited
   * tries (429) have their own budget on top of this one (`MAX_RATE_LIMITED_RETRIES`,
   * `MAX_RATE_LIMITED_WAIT_MS`), except with 1, which means no retry at all.
   */
  maxAttempts: number;
}

/** Cap on a server-requested wait, so a hostile `retry_after_ms` cannot park the client for days. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * Rate-limited retries allowed on top of `maxAttempts`, and their total wait. A 429 means the server
 * did not act on the request and said when to come back, so it does not use up the attempts meant
 * for failures: under a long rate-limit storm a send waits its turn instead of failing. Both bounds
 * keep a server that answers 429 for ever from holding a request for ever.
 */
export const MAX_RATE_LIMITED_RETRIES = 100;
export const MAX_RATE_LIMITED_WAIT_MS = 10 * 60_000;

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 500, maxMs: 30_000, maxAttempts: 5 });

/**
 * Delay before retry number `attempt` (0-based) after `err`: the server's `retry_after_ms` when it
 * gave one, else a uniform draw in [ceiling/2, ceiling] where the ceiling doubles per attempt.
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  err: unknown,
  random: () => number,
): number {
  if (err instanceof MatrixError && err.retryAfterMs !== undefined) {
    return Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS);
  }
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface RetryOptions {
  policy: BackoffPolicy;
  clock: Clock;
  signal?: AbortSignal;
  /** Which errors to retry; transient ones (network, 429, 5xx) by default. */
  shouldRetry?: (err: unknown) => boolean;
  /** Called before each wait (for logging and sync-state events). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn` until it succeeds, fails permanently, or runs out of attempts (then rethrows the last
 * error). Rate-limited tries count against `MAX_RATE_LIMITED_RETRIES`, not `maxAttempts` (see
 * `BackoffPolicy.maxAttempts`); their backoff, when the server names no wait, grows with their count.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const shouldRetry = opts.shouldRetry ?? isTransientError;
  let failures = 0;
  let rateLimited = 0;
  let rateLimitedWaitMs = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!shouldRetry(err) || opts.signal?.aborted) throw err;
      let delay: number;
      if (err instanceof MatrixError && err.isRateLimited && opts.policy.maxAttempts > 1) {
        delay = backoffDelay(opts.policy, rateLimited++, err, opts.clock.random);
        rateLimitedWaitMs += delay;
        // A policy that retries failures for ever (the sync loop) waits out rate limits for ever too.
        const bounded = opts.policy.maxAttempts !== Infinity;
        if (
          bounded &&
          (rateLimited > MAX_RATE_LIMITED_RETRIES || rateLimitedWaitMs > MAX_RATE_LIMITED_WAIT_MS)
        )
          throw err;
      } else {
        if (++failures >= opts.policy.maxAttempts) throw err;
        delay = backoffDelay(opts.policy, failures - 1, err, opts.clock.random);
      }
      opts.onRetry?.(err, attempt, delay);
      await opts.clock.sleep(delay, opts.signal);
    }
  }
}
