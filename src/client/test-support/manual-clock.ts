// A clock whose sleeps end only when the test says so: for schedules (dehydration rotations) that
// must neither wait in real time nor run before the test has looked at them.
import type { Clock } from "../clock.ts";

export interface ManualClock extends Clock {
  /** Ends every sleep under way. */
  wake(): void;
  /** How many sleeps are under way. */
  sleeping(): number;
}

/** A manual clock reading `now` (the wall clock unless given); `random()` is 0.5. */
export function manualClock(now: () => number = () => Date.now()): ManualClock {
  const waiting: (() => void)[] = [];
  return {
    now,
    random: () => 0.5,
    sleep: (_ms, signal) =>
      new Promise<void>((resolve, reject) => {
        // As the real clock: a schedule stopped while its rotation ran sleeps no more.
        if (signal?.aborted) {
          reject(new Error("aborted"));
          return;
        }
        waiting.push(resolve);
        const abort = () => {
          const at = waiting.indexOf(resolve);
          if (at !== -1) waiting.splice(at, 1);
          reject(new Error("aborted"));
        };
        signal?.addEventListener("abort", abort, { once: true });
      }),
    wake: () => {
      for (const w of waiting.splice(0)) w();
    },
    sleeping: () => waiting.length,
  };
}
