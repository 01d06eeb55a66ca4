// Prints an E2EE benchmark report as a table (for bench/e2ee/main.ts and `npm run bench`).
import { formatRate } from "../harness.ts";
import type { E2eeBenchReport, E2eeRow, E2eeTarget } from "./run.ts";

function value(row: E2eeRow, v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "—";
  if (row.unit === "ops/s") return formatRate(v);
  if (row.unit === "MB") return `${v.toFixed(0)} MB`;
  return v >= 10_000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v >= 100 ? 0 : 1)} ms`;
}

function target(t: E2eeTarget | undefined, pass: boolean | undefined): string {
  if (t === undefined) return "";
  const mark = pass === undefined ? "" : pass ? " ✓" : " ✗";
  if (t.kind === "ratio") return `≥${t.min}x${mark}`;
  if (t.kind === "maxMb") return `<${t.value} MB${mark}`;
  return `<${t.value >= 1000 ? `${(t.value / 1000).toFixed(1)} s` : `${t.value.toFixed(0)} ms`}${mark}`;
}

/** Prints the report as a table, followed by the notes. */
export function printE2eeReport(report: E2eeBenchReport): void {
  const header = ["workload", "keyroom", "crypto-wasm", "ratio", "target", "wall ratio", "keyroom sqlite"];
  const rows = report.rows.map((r) => [
    r.label,
    value(r, r.keyroom),
    value(r, r.wasm),
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
    target(r.target, r.pass),
    r.wallRatio === undefined ? "" : `${r.wallRatio.toFixed(2)}x`,
    value(r, r.keyroomSqlite),
  ]);
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  for (const r of all) {
    console.log(
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  "),
    );
  }
  console.log(
    "\nTimes: CPU time (user + system, all threads) of the machine calls only, the fake homeserver's work\n" +
      "left out; rates: operations per CPU second. The machine is shared, so CPU time is the fairer measure\n" +
      "(wall ratio: the same on wall-clock time). Ratio: Keyroom's advantage. keyroom sqlite: the same workload on\n" +
      "SqliteCryptoStore (WAL, synchronous=FULL, one transaction per machine step).",
  );
  for (const r of report.rows) if (r.note !== undefined) console.log(`- ${r.label}: ${r.note}`);
}
