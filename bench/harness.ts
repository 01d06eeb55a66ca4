// A small, dependency-free measuring loop for one operation alone (primitive floors, bench/primitives.ts):
// a timed warm-up, then batches until a time budget is spent; the rate is all operations over all
// batches' CPU time (no batch is dropped). Comparisons between implementations use `alternate`
// (bench/stats.ts) instead.
import { performance } from "node:perf_hooks";
import { cpuMs } from "./stats.ts";

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
  let ops = 0;
  let batches = 0;
  const c0 = cpuMs();
  const end = performance.now() + budget;
  while (performance.now() < end || batches < 5) {
    for (let i = 0; i < batch; i++) sink = fn();
    ops += batch;
    batches++;
  }
  const cpu = cpuMs() - c0;
  keep(sink);
  return { name, opsPerSec: (ops * 1000) / Math.max(cpu, 1e-3), ops };
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
  if (!Number.isFinite(opsPerSec)) return "—";
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)}M/s`;
  if (opsPerSec >= 1e4) return `${(opsPerSec / 1e3).toFixed(1)}k/s`;
  return `${opsPerSec.toFixed(opsPerSec >= 100 ? 0 : 1)}/s`;
}
