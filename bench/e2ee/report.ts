// Prints an E2EE benchmark report as a table (for bench/e2ee/main.ts and `npm run bench`).
import { formatRate } from "../harness.ts";
import { formatRatio, type Spread } from "../stats.ts";
import type { E2eeRow, E2eeTarget } from "./rows.ts";
import type { E2eeBenchReport } from "./run.ts";

function value(unit: E2eeRow["unit"], v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "—";
  if (unit === "ops/s") return formatRate(v);
  if (unit === "MB") return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} MB`;
  return v >= 10_000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v >= 100 ? 0 : 1)} ms`;
}

/** "4.1k/s (3.9k–4.3k)": a figure's median and spread. */
export function formatSpread(unit: E2eeRow["unit"], s: Spread | undefined): string {
  if (s === undefined || s.n === 0) return "—";
  if (s.n === 1) return value(unit, s.median);
  const bare = (v: number) =>
    value(unit, v)
      .replace(/\/s$/, "")
      .replace(/ (ms|s|MB)$/, "");
  return `${value(unit, s.median)} (${bare(s.min)}–${bare(s.max)})`;
}

export function formatTarget(t: E2eeTarget | undefined, pass: boolean | undefined): string {
  if (t === undefined) return "";
  const mark = pass === undefined ? "" : pass ? " ✓" : " ✗";
  if (t.kind === "ratio") return `≥${t.min}x${mark}`;
  if (t.kind === "maxMb") return `<${t.value} MB${mark}`;
  return `<${t.value >= 1000 ? `${(t.value / 1000).toFixed(1)} s` : `${t.value.toFixed(0)} ms`}${mark}`;
}

/** Prints the report as a table, followed by the notes. */
export function printE2eeReport(report: E2eeBenchReport): void {
  const header = [
    "workload",
    "keyroom sqlite",
    "crypto-wasm",
    "ratio (min–max)",
    "target",
    "wall ratio",
    "keyroom memory",
    "memory ratio",
  ];
  const rows = report.rows.map((r) => [
    r.label,
    formatSpread(r.unit, r.sqlite),
    formatSpread(r.unit, r.wasm),
    r.ratio === undefined ? "" : formatRatio(r.ratio),
    formatTarget(r.target, r.pass),
    r.wallRatio === undefined ? "" : `${r.wallRatio.median.toFixed(2)}x`,
    formatSpread(r.unit, r.memory),
    r.memoryRatio === undefined ? "" : `${r.memoryRatio.median.toFixed(2)}x`,
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  for (const r of all) {
    console.log(
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  "),
    );
  }
  console.log(
    `\nMedian (min–max) of ${report.reps} repetitions; ratios per repetition, Keyroom's advantage. Times: CPU time\n` +
      "(user + system, all threads); rates: operations per CPU second. The three machines run in one process\n" +
      "in alternating batches (order flipping every round), every batch counted; the fake homeserver's work\n" +
      "is left out where a workload talks to it. keyroom sqlite: SqliteCryptoStore (WAL; per-message commits\n" +
      "not synced, everything else synced: docs/stores.md), the headline; keyroom memory: MemoryCryptoStore.\n" +
      "wall ratio: the same on wall-clock time (on a shared machine it says more about the neighbours).",
  );
  for (const r of report.rows) {
    const cold = r.cold;
    const coldText =
      cold === undefined
        ? ""
        : ` [cold, first batch: sqlite ${value(r.unit, cold.sqlite)}, crypto-wasm ${value(r.unit, cold.wasm)}, memory ${value(r.unit, cold.memory)}]`;
    const wall = r.wall?.sqlite;
    const wallText =
      r.unit === "MB" || wall === undefined ? "" : ` [sqlite wall: ${formatSpread(r.unit, wall)}]`;
    if (r.note !== undefined || coldText !== "")
      console.log(`- ${r.label}: ${r.note ?? ""}${coldText}${wallText}`);
  }
}
