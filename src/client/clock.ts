// Time and randomness behind an interface so backoff and retries are testable without real waits.
import { NetworkError } from "./errors.ts";

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with NetworkError("ABORTED") when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Uniform in [0, 1), for jitter. */
  random(): number;
}

/**
 * The longest delay `setTimeout` takes: a longer one fires at once (Node warns, browsers too), so
 * a monthly cron job or a 30-day dehydration period would have run in a tight loop.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** Timer functions, as the platform gives them (`sleepIn` takes others in tests). */
export interface Timers {
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

const platformTimers: Timers = {
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};

/** `Clock.sleep` on `timers`: waits longer than `MAX_TIMER_DELAY_MS` in steps of at most that. */
export function sleepIn(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new NetworkError("ABORTED", "aborted"));
      return;
    }
    let left = Math.max(0, ms);
    let timer: unknown;
    const onAbort = () => {
      timers.clearTimeout(timer);
      reject(new NetworkError("ABORTED", "aborted"));
    };
    const arm = () => {
      const step = Math.min(left, MAX_TIMER_DELAY_MS);
      left -= step;
      timer = timers.setTimeout(() => {
        if (left > 0) return arm();
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, step);
    };
    arm();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export const systemClock: Clock = {
  now: () => Date.now(),
  random: () => Math.random(),
  sleep: (ms, signal) => sleepIn(platformTimers, ms, signal),
};
