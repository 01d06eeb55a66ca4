// Time budgets for machine-dependent work in tests. No test may fail because the machine is slow
// or busy (other work on the same cores), so a budget is never a fixed number of milliseconds: it is
// what the work needs on an idle machine, stretched by how loaded the machine is when the budget is
// judged, so a hang still fails but a busy machine does not.
import { availableParallelism, loadavg } from "node:os";

/** The most a budget is stretched by load (a hung process must still fail, eventually). */
export const MAX_LOAD_FACTOR = 20;

/**
 * How much slower than idle this machine runs now: `KEYROOM_TEST_TIME_SCALE` if set, else the
 * runnable processes per core over the last minute (at least 1, at most MAX_LOAD_FACTOR).
 */
export function loadFactor(): number {
  const forced = Number(process.env.KEYROOM_TEST_TIME_SCALE);
  if (Number.isFinite(forced) && forced > 0) return forced;
  const perCore = (loadavg()[0] ?? 0) / Math.max(1, availableParallelism());
  return Math.min(MAX_LOAD_FACTOR, Math.max(1, perCore));
}

/** `baseMs` (enough on an idle machine) scaled by the load now. For `it(..., { timeout })`. */
export function scaledMs(baseMs: number): number {
  return Math.ceil(baseMs * loadFactor());
}

/**
 * Races `promise` against a budget of `baseMs` that is judged again whenever it runs out: while
 * the load-scaled budget exceeds the time spent, it keeps waiting. Rejects with `onExpiry(spentMs)`.
 */
export async function withinBudget<T>(
  promise: Promise<T>,
  baseMs: number,
  onExpiry: (spentMs: number) => Error,
): Promise<T> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    const judge = () => {
      const spent = performance.now() - start;
      const budget = scaledMs(baseMs);
      if (spent >= budget) reject(onExpiry(Math.round(spent)));
      else timer = setTimeout(judge, budget - spent);
    };
    timer = setTimeout(judge, baseMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A deadline judged like `withinBudget`'s: `over()` is true once the load-scaled budget is spent. */
export function budget(baseMs: number): { over(): boolean; leftMs(): number; spentMs(): number } {
  const start = performance.now();
  const spentMs = () => performance.now() - start;
  const leftMs = () => scaledMs(baseMs) - spentMs();
  return { over: () => leftMs() <= 0, leftMs, spentMs: () => Math.round(spentMs()) };
}
