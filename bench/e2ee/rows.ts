// One line of the E2EE report: Keyroom on SQLite (the headline), Keyroom on memory, crypto-wasm,
// each as the median and spread of its repetitions, and the ratios computed per repetition.
import { type Spread, spread } from "../stats.ts";

export type E2eeTarget =
  | { kind: "ratio"; min: number }
  | { kind: "maxMs"; value: number }
  | { kind: "maxMb"; value: number };

export type Side = "sqlite" | "memory" | "wasm";

/** Per-repetition figures of one workload: rates (ops per CPU second) or CPU milliseconds. */
export interface Series {
  cpu: Partial<Record<Side, number[]>>;
  wall: Partial<Record<Side, number[]>>;
  /** The first, warm-up pass alone (same unit), when there is one. */
  cold?: Partial<Record<Side, number>>;
}

export interface E2eeRow {
  id: string;
  label: string;
  unit: "ms" | "ops/s" | "MB";
  /** CPU figures (user + system, all threads): the basis of the ratios. */
  sqlite?: Spread;
  memory?: Spread;
  wasm?: Spread;
  /** Wall-clock figures beside them (for rates: per wall second). */
  wall?: Partial<Record<Side, Spread>>;
  cold?: Partial<Record<Side, number>>;
  /** Keyroom-on-SQLite's advantage over crypto-wasm, per repetition (rates: k/w, times: w/k). */
  ratio?: Spread;
  /** The same for Keyroom on memory. */
  memoryRatio?: Spread;
  /** SQLite's ratio on wall-clock figures (noisier on a shared machine). */
  wallRatio?: Spread;
  target?: E2eeTarget;
  pass?: boolean;
  note?: string;
}

function advantage(
  unit: E2eeRow["unit"],
  k: number[] | undefined,
  w: number[] | undefined,
): Spread | undefined {
  if (k === undefined || w === undefined || k.length !== w.length || k.length === 0) return undefined;
  return spread(k.map((x, i) => (unit === "ops/s" ? x / (w[i] as number) : (w[i] as number) / x)));
}

/** Builds a row; the target is checked on the SQLite figures (medians). */
export function row(
  id: string,
  label: string,
  unit: E2eeRow["unit"],
  s: Series,
  target?: E2eeTarget,
  note?: string,
): E2eeRow {
  const r: E2eeRow = { id, label, unit };
  const wall: Partial<Record<Side, Spread>> = {};
  for (const side of ["sqlite", "memory", "wasm"] as const) {
    const c = s.cpu[side];
    if (c !== undefined) r[side] = spread(c);
    const w = s.wall[side];
    if (w !== undefined) wall[side] = spread(w);
  }
  r.wall = wall;
  if (s.cold !== undefined) r.cold = s.cold;
  r.ratio = advantage(unit, s.cpu.sqlite, s.cpu.wasm);
  r.memoryRatio = advantage(unit, s.cpu.memory, s.cpu.wasm);
  r.wallRatio = advantage(unit, s.wall.sqlite, s.wall.wasm);
  if (target !== undefined) {
    r.target = target;
    const main = r.sqlite ?? r.memory;
    if (target.kind === "ratio") r.pass = r.ratio !== undefined && r.ratio.median >= target.min;
    else if (main !== undefined) r.pass = main.median < target.value;
  }
  if (note !== undefined) r.note = note;
  return r;
}
