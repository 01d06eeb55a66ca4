// `node --conditions=source --import tsx bench/e2ee/main.ts`: the E2EE benchmark on its own. Prints a
// table (Keyroom beside matrix-sdk-crypto-wasm, ratios, targets) and writes
// bench/results/e2ee-<timestamp>.json. KEYROOM_BENCH_SCALE=0.1 for a quick run.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { formatRate } from "../harness.ts";
import { type E2eeBenchReport, type E2eeRow, type E2eeTarget, runE2eeBench } from "./run.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

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
  const header = ["workload", "keyroom", "crypto-wasm", "ratio", "target", "keyroom sqlite"];
  const rows = report.rows.map((r) => [
    r.label,
    value(r, r.keyroom),
    value(r, r.wasm),
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
    target(r.target, r.pass),
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
      "left out; rates: operations per CPU second. The machine is shared, so CPU time is the fairer measure;\n" +
      "wall times are in the JSON. Ratio: Keyroom's advantage. keyroom sqlite: the same workload on\n" +
      "SqliteCryptoStore (WAL, synchronous=FULL, one transaction per machine step).",
  );
  for (const r of report.rows) if (r.note !== undefined) console.log(`- ${r.label}: ${r.note}`);
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  console.log(
    `Keyroom E2EE benchmark — ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}`,
  );
  const report = await runE2eeBench();
  console.log(
    `scale ${report.scale}: ${report.counts.devices} devices, ${report.counts.events} events, ` +
      `${report.counts.importKeys} keys imported; ${(report.durationMs / 1000).toFixed(0)} s in all\n`,
  );
  printE2eeReport(report);
  mkdirSync(`${root}/bench/results`, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  writeFileSync(`${root}/bench/results/e2ee-${stamp}.json`, `${JSON.stringify(report, null, 2)}\n`);
}
