// Per-user token buckets for commands: `perMinute` commands a minute with bursts of `burst`.
import type { Clock } from "../client/index.ts";

/** Users tracked at once; the least recently seen are forgotten past this (a full bucket again). */
export const MAX_RATE_LIMITED_USERS = 10_000;

export interface RateLimitOptions {
  perMinute: number;
  /** Commands allowed at once after a quiet time (default: `perMinute`, at least 1). */
  burst?: number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number; warned: boolean }>();
  readonly #rate: number;
  readonly #cap: number;
  constructor(
    opts: RateLimitOptions,
    private readonly clock: Pick<Clock, "now">,
  ) {
    this.#rate = opts.perMinute / 60_000;
    this.#cap = Math.max(1, opts.burst ?? opts.perMinute);
  }

  /**
   * Takes one token for `userId`. `allowed: false` carries the wait until the next token and
   * whether this is the first refusal since the user was last allowed (answer that one only).
   */
  take(userId: string): { allowed: true } | { allowed: false; retryInMs: number; first: boolean } {
    const now = this.clock.now();
    const b = this.#buckets.get(userId) ?? { tokens: this.#cap, at: now, warned: false };
    this.#buckets.delete(userId); // re-inserted last: the map's order is least recently seen first
    b.tokens = Math.min(this.#cap, b.tokens + (now - b.at) * this.#rate);
    b.at = now;
    this.#buckets.set(userId, b);
    if (this.#buckets.size > MAX_RATE_LIMITED_USERS) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.warned = false;
      return { allowed: true };
    }
    const first = !b.warned;
    b.warned = true;
    return { allowed: false, retryInMs: Math.ceil((1 - b.tokens) / this.#rate), first };
  }
}
