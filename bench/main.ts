// `npm run bench`: Keyroom side by side with the implementations it must match, in one run, printing
// ratios and writing the figures to bench/results/. Sections: `crypto` (Olm/Megolm on both back ends
// vs libolm), `e2ee` (the E2EE engine vs matrix-sdk-crypto-wasm), `devserver` (throughput and
// latency). `npm run bench -- crypto e2ee` runs only those. Each crypto implementation runs in its
// own process so that back-end selection (a package condition) and JIT state don't leak between them.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { printE2eeReport } from "./e2ee/report.ts";
import { runE2eeBench } from "./e2ee/run.ts";
import { formatRate } from "./harness.ts";
import { CRYPTO_OPS, type CryptoBenchReport, type CryptoOp } from "./ops.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Targets from the foundation issue: minimum ratio to libolm for the Node back end. */
const TARGETS: Partial<Record<CryptoOp, number>> = {
  megolmEncrypt: 1.5,
  megolmDecrypt: 1.4,
  olmOutbound: 2.5,
  olmInbound: 2.5,
};

/** Runs a bench script in a child process; returns its stdout. */
function runChild(script: string, conditions: string[] = [], echo = false): string {
  const args = [
    ...conditions.map((c) => `--conditions=${c}`),
    "--conditions=source",
    "--import",
    "tsx",
    script,
  ];
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8", env: process.env });
  if (r.status !== 0) throw new Error(`${script} failed:\n${r.stderr}`);
  if (echo) process.stdout.write(r.stdout.split("\n").slice(0, -2).join("\n").concat("\n"));
  return r.stdout;
}

function lastJsonLine<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as T;
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) {
    console.log(
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "),
    );
  }
}

function cryptoSection(): CryptoBenchReport[] {
  console.log("\n== Olm / Megolm: Keyroom (both back ends) vs libolm ==");
  const node = lastJsonLine<CryptoBenchReport>(runChild("bench/keyroom-crypto.ts"));
  const noble = lastJsonLine<CryptoBenchReport>(runChild("bench/keyroom-crypto.ts", ["keyroom-noble"]));
  const libolm = lastJsonLine<CryptoBenchReport>(runChild("bench/libolm-crypto.ts"));
  const header = ["operation", "libolm", "keyroom node", "ratio", "target", "floor (node)", "of floor"];
  const rows: string[][] = [[...header, "keyroom noble", "ratio"]];
  for (const [op, label] of Object.entries(CRYPTO_OPS) as [CryptoOp, string][]) {
    const base = libolm.rates[op] ?? Number.NaN;
    const n = node.rates[op] ?? Number.NaN;
    const b = noble.rates[op] ?? Number.NaN;
    const floor = node.floors?.[op] ?? Number.NaN;
    const target = TARGETS[op];
    rows.push([
      label,
      formatRate(base),
      formatRate(n),
      `${(n / base).toFixed(2)}x`,
      target ? `≥${target}x ${n / base >= target ? "✓" : "✗"}` : "",
      formatRate(floor),
      `${((n / floor) * 100).toFixed(0)}%`,
      formatRate(b),
      `${(b / base).toFixed(2)}x`,
    ]);
  }
  printTable(rows);
  console.log('"floor": the rate if the operation cost nothing but the primitive calls it must make (timed');
  console.log('alone); "of floor" at 67% or more means within 1.5x of the primitives\' own cost.');
  return [node, noble, libolm];
}

const sections = process.argv.slice(2);
const wanted = (name: string) => sections.length === 0 || sections.includes(name);
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model,
};
console.log(`Keyroom benchmarks — ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}`);

if (wanted("crypto")) results.crypto = cryptoSection();
if (wanted("e2ee")) {
  console.log("\n== E2EE engine: Keyroom vs matrix-sdk-crypto-wasm (vodozemac), same workloads ==");
  const report = await runE2eeBench();
  printE2eeReport(report);
  results.e2ee = report;
}
if (wanted("devserver")) {
  console.log("\n== Development homeserver ==");
  results.devserver = lastJsonLine<unknown>(runChild("bench/devserver.ts", [], true));
}

mkdirSync(`${root}/bench/results`, { recursive: true });
const json = `${JSON.stringify(results, null, 2)}\n`;
writeFileSync(`${root}/bench/results/run-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, json);
writeFileSync(`${root}/bench/results/latest.json`, json);
