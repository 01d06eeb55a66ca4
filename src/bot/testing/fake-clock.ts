// A clock that only moves when told: `advance(ms)` fires the sleeps that fall due, in time order,
// letting the bot's jobs finish between them. For scheduled jobs and rate limits in tests.
import type { Clock } from "../../index.ts";
import { NetworkError } from "../../index.ts";

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers: Timer[] = [];

  /** Starts at `start`; by default the current time rounded down to a whole minute, so cron ticks line up with it. */
  constructor(start = Math.floor(Date.now() / 60_000) * 60_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }
  random(): number {
    return Math.random();
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new NetworkError("ABORTED", "aborted"));
        return;
      }
      const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, resolve: () => {} };
      const onAbort = () => {
        const i = this.#timers.indexOf(timer);
        if (i >= 0) this.#timers.splice(i, 1);
        reject(new NetworkError("ABORTED", "aborted"));
      };
      timer.resolve = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Sleeps waiting on this clock. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, firing each sleep that falls due in order; after each, waits for
   * `settle` (the bot's jobs to finish) so jobs see the time they were due at.
   */
  async advance(ms: number, settle: () => Promise<void> = async () => {}): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (next === undefined || next.at > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
      // Let the woken code run up to its next await on I/O, then wait for jobs to finish.
      await new Promise((r) => setImmediate(r));
      await settle();
    }
    this.#now = target;
  }
}
