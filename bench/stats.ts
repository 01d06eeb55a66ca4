// The benchmark's method, in one place (see bench/README.md):
// - sides under comparison run in ONE process, in alternating batches (the order flips every round),
//   so load from other processes on a shared machine falls on both alike;
// - each side's rate is its operations over its CPU time (user + system, all threads) summed over
//   ALL its batches of a repetition: no batch is dropped, GC pauses included;
// - a ratio is computed per repetition, and reported as the median and the min–max spread of at
//   least 5 repetitions;
// - the warm-up (the first round) is timed and reported apart ("cold") from the steady state.
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";

/** Median and spread of repeated measurements. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const sorted = [...finite].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted.at(-1) as number, n: sorted.length };
}

/** CPU time of this process so far (user + system, all threads), in milliseconds. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** What the figures were measured on, recorded with them. */
export interface MachineInfo {
  date: string;
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  /** 1, 5 and 15-minute load averages when the run started. */
  loadavg: number[];
}

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Returned by a side that times its own batch (leaving out work that is not its own). */
export interface SelfTimed {
  selfTimed: true;
  cpuMs: number;
  wallMs: number;
}

/** One side of a comparison: runs a batch of `ops` operations. */
export interface Side {
  name: string;
  run(ops: number): unknown;
}

function isSelfTimed(v: unknown): v is SelfTimed {
  return typeof v === "object" && v !== null && (v as { selfTimed?: unknown }).selfTimed === true;
}

export interface SideResult {
  /** Operations per CPU second in the first round (JIT, caches and stores still cold). */
  cold: number;
  /** Operations per CPU second, one per repetition. */
  cpuRates: number[];
  /** Operations per wall-clock second, one per repetition (noisier on a shared machine). */
  wallRates: number[];
}

export interface AlternateOptions {
  /** Repetitions (at least 5 for a reported ratio). */
  reps: number;
  /** Rounds per repetition: each side runs one batch per round. */
  rounds: number;
  /** Operations per batch, per side (or one number for all). */
  batch: number | Record<string, number>;
}

const batchOf = (o: AlternateOptions, name: string): number =>
  typeof o.batch === "number" ? o.batch : (o.batch[name] ?? 1);

/**
 * Runs the sides in alternating batches: one cold round, then `reps` repetitions of `rounds`
 * rounds. Each round runs every side once, the order reversed on odd rounds. Awaits a side's
 * batch when it returns a promise; a batch resolving to `SelfTimed` counts the time it reports.
 */
export async function alternate(
  sides: readonly Side[],
  options: AlternateOptions,
): Promise<Record<string, SideResult>> {
  const out: Record<string, SideResult> = {};
  for (const s of sides) out[s.name] = { cold: 0, cpuRates: [], wallRates: [] };
  const timeBatch = async (s: Side): Promise<{ cpu: number; wall: number; ops: number }> => {
    const ops = batchOf(options, s.name);
    const c0 = cpuMs();
    const t0 = performance.now();
    const r = await s.run(ops);
    if (isSelfTimed(r)) return { cpu: r.cpuMs, wall: r.wallMs, ops };
    return { cpu: cpuMs() - c0, wall: performance.now() - t0, ops };
  };
  for (const s of sides) {
    const t = await timeBatch(s);
    (out[s.name] as SideResult).cold = (t.ops * 1000) / Math.max(t.cpu, 1e-3);
  }
  for (let rep = 0; rep < options.reps; rep++) {
    const sum = new Map(sides.map((s) => [s.name, { cpu: 0, wall: 0, ops: 0 }]));
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) {
        const t = await timeBatch(s);
        const acc = sum.get(s.name) as { cpu: number; wall: number; ops: number };
        acc.cpu += t.cpu;
        acc.wall += t.wall;
        acc.ops += t.ops;
      }
    }
    for (const s of sides) {
      const acc = sum.get(s.name) as { cpu: number; wall: number; ops: number };
      const r = out[s.name] as SideResult;
      r.cpuRates.push((acc.ops * 1000) / Math.max(acc.cpu, 1e-3));
      r.wallRates.push((acc.ops * 1000) / Math.max(acc.wall, 1e-3));
    }
  }
  return out;
}

/** Per-repetition ratios a/b of two equally long series (rates: a's advantage). */
export function ratios(a: readonly number[], b: readonly number[]): Spread {
  if (a.length !== b.length) throw new Error("ratios: series of different lengths");
  return spread(a.map((x, i) => x / (b[i] as number)));
}

/**
 * Least-squares slope of `ys` on `xs` (e.g. RSS growth per session held, from several sizes in one
 * process: the fixed cost is the intercept and drops out). NaN without two distinct `xs`.
 */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length) throw new Error("slope: series of different lengths");
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    sxy += dx * ((ys[i] as number) - my);
    sxx += dx * dx;
  }
  return sxx === 0 ? Number.NaN : sxy / sxx;
}

/** "2.05x (1.93–2.20)": a ratio's median and spread. */
export function formatRatio(s: Spread): string {
  if (s.n === 0) return "—";
  return s.n === 1
    ? `${s.median.toFixed(2)}x`
    : `${s.median.toFixed(2)}x (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
}
