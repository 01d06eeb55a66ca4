// When the kill loop kills: relative to what the victim has done, not at random wall-clock times.
// Under load a victim can spend seconds starting, so a kill "50-1500 ms after boot" mostly landed
// before the client was ready and the crash-during-sync window was rarely reached. Here most runs
// have the victim kill itself (from a thread: handling is mostly synchronous) partway into handling
// its n-th /sync response that carries something, at a point drawn from how long handling took per
// event in earlier runs, so it scales with the machine; the rest are killed during start-up, at a
// point drawn from how long start-up took so far.
import type { VictimLine } from "./victim.ts";

/** Share of runs aimed at the window between a /sync response arriving and its token being saved. */
export const SYNC_AIMED_SHARE = 0.8;
/**
 * A sync-aimed run whose victim completes this many syncs without one that carries anything is
 * killed anyway (progress-based: it counts syncs, not seconds).
 */
export const MAX_IDLE_SYNCS = 40;
/** Estimates before any run was measured. */
const DEFAULT_HANDLING_MS_PER_ITEM = 2;
const DEFAULT_STARTUP_MS = 1500;

type SyncGot = Extract<VictimLine, { t: "sync-got" }>;
const carries = (l: VictimLine): l is SyncGot => l.t === "sync-got" && l.toDevice + l.events > 0;

/** True once the victim has received its `n`-th carrying /sync response, or idled `MAX_IDLE_SYNCS`. */
export function syncTarget(n: number): (lines: readonly VictimLine[]) => boolean {
  return (lines) => {
    let carrying = 0;
    let all = 0;
    for (const l of lines) {
      if (l.t !== "sync-got") continue;
      all++;
      if (carries(l)) carrying++;
    }
    return carrying >= n || all >= MAX_IDLE_SYNCS;
  };
}

/** Where a run's kill landed, from the lines it printed before it died. */
export interface KillPoint {
  /** Between a /sync response arriving and its token being saved. */
  inSync: boolean;
  /** ... and that response carried to-device messages or room events (the window that matters). */
  inCarryingSync: boolean;
  /** Before the client was ready (logging in, opening stores). */
  beforeReady: boolean;
}

export function killPoint(lines: readonly VictimLine[]): KillPoint {
  let open: VictimLine | undefined;
  for (const l of lines) {
    if (l.t === "sync-got") open = l;
    else if (l.t === "sync-saved") open = undefined;
  }
  return {
    inSync: open !== undefined,
    inCarryingSync: open !== undefined && carries(open),
    beforeReady: !lines.some((l) => l.t === "ready"),
  };
}

const median = (xs: readonly number[], fallback: number): number => {
  if (xs.length === 0) return fallback;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? fallback;
};

/** What earlier runs took on this machine, now: the kill delays and the hang budget scale with it. */
export class KillTiming {
  readonly #handling: number[] = [];
  readonly #startup: number[] = [];

  /** Learns from one finished run: its lines and when each arrived (this process's clock). */
  record(lines: readonly VictimLine[], arrivals: readonly number[]): void {
    let got: SyncGot | undefined;
    for (const l of lines) {
      if (l.t === "sync-got") got = carries(l) ? l : undefined;
      else if (l.t === "sync-saved" && got !== undefined) {
        this.#handling.push((l.ms - got.ms) / (got.toDevice + got.events));
        got = undefined;
      }
    }
    const boot = lines.findIndex((l) => l.t === "boot");
    const ready = lines.findIndex((l) => l.t === "ready");
    const [b, r] = [arrivals[boot], arrivals[ready]];
    if (boot >= 0 && ready >= 0 && b !== undefined && r !== undefined) this.#startup.push(r - b);
  }

  /** Typical time to handle a /sync response, per event or to-device message it carries. */
  handlingMsPerItem(): number {
    return median(this.#handling, DEFAULT_HANDLING_MS_PER_ITEM);
  }

  /** Typical time from the victim's first line to its client being ready. */
  startupMs(): number {
    return median(this.#startup, DEFAULT_STARTUP_MS);
  }

  /** The slowest start-up seen (a budget for a process that must print something by then). */
  slowestStartupMs(): number {
    return Math.max(DEFAULT_STARTUP_MS, ...this.#startup);
  }
}
