// Time and randomness behind an interface so backoff and retries are testable without real waits.
import { NetworkError } from "./errors.ts";

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with NetworkError("ABORTED") when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Uniform in [0, 1), for jitter. */
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  random: () => Math.random(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new NetworkError("ABORTED", "aborted"));
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(new NetworkError("ABORTED", "aborted"));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
