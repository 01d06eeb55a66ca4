// A small, dependency-free measuring loop: warm up, then run batches until a time budget is spent,
// and report operations per second from the fastest half of the batches (less noise from GC and
// from the other core being busy).
import { performance } from "node:perf_hooks";

export interface Measurement {
  name: string;
  opsPerSec: number;
  /** Operations run while measuring. */
  ops: number;
}

export interface MeasureOptions {
  /** Time budget for the measured batches, in milliseconds. */
  budgetMs?: number;
  /** Operations per batch; pick so one batch takes a few milliseconds at least. */
  batch?: number;
}

/** Measures `fn`, which performs one operation per call (its return value is kept alive to defeat DCE). */
export function measure(name: string, fn: () => unknown, options: MeasureOptions = {}): Measurement {
  const budget = options.budgetMs ?? Number(process.env.KEYROOM_BENCH_MS ?? 1500);
  const batch = options.batch ?? 50;
  let sink: unknown;
  // Warm-up: lets the JIT settle and fills caches.
  const warmEnd = performance.now() + Math.min(300, budget / 4);
  while (performance.now() < warmEnd) for (let i = 0; i < batch; i++) sink = fn();
  const rates: number[] = [];
  let ops = 0;
  const end = performance.now() + budget;
  while (performance.now() < end || rates.length < 5) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) sink = fn();
    const dt = performance.now() - t0;
    rates.push((batch * 1000) / Math.max(dt, 1e-6));
    ops += batch;
  }
  keep(sink);
  rates.sort((a, b) => b - a);
  const best = rates.slice(0, Math.max(1, Math.ceil(rates.length / 2)));
  const opsPerSec = best.reduce((a, b) => a + b, 0) / best.length;
  return { name, opsPerSec, ops };
}

let kept: unknown;
function keep(value: unknown): void {
  kept = value;
}
export function lastKept(): unknown {
  return kept;
}

/** Time of one operation in microseconds for a measurement. */
export function microseconds(m: Measurement): number {
  return 1e6 / m.opsPerSec;
}

/** Formats a number of operations per second for a table. */
export function formatRate(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M/s`;
  if (opsPerSec >= 1e4) return `${(opsPerSec / 1e3).toFixed(1)}k/s`;
  return `${opsPerSec.toFixed(opsPerSec >= 100 ? 0 : 1)}/s`;
}
