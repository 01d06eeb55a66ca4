// `npm run bench`: Keyroom side by side with the implementations it must match, in one run, printing
// ratios and writing the figures to bench/results/. Sections: `crypto` (Olm/Megolm vs libolm, one
// process per Keyroom back end), `e2ee` (the E2EE engine vs matrix-sdk-crypto-wasm), `devserver`
// (throughput and latency), `sync` (initial sync of a large account, Keyroom's client vs
// matrix-js-sdk; then one message in a room of 5 000 members), `bots` (command round trips,
// Keyroom vs matrix-bot-sdk), `browser` (Megolm
// decrypt beside libolm WASM in Chromium, store open, bundle size). `npm run bench -- crypto e2ee` runs only those; `--quick` is a smoke run
// of about a minute. The method (alternating batches, CPU time, median of 5) is in bench/README.md.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { printE2eeReport } from "./e2ee/report.ts";
import { runE2eeBench } from "./e2ee/run.ts";
import { formatRate } from "./harness.ts";
import { CRYPTO_OPS, type CryptoBenchReport, type CryptoOp } from "./ops.ts";
import { formatRatio, machineInfo } from "./stats.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Targets (issue 14): minimum ratio to libolm, Node back end, by the alternating method. */
const TARGETS: Partial<Record<CryptoOp, number>> = {
  megolmEncrypt: 2,
  megolmDecrypt: 2,
  olmOutbound: 4,
  olmInbound: 4,
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
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    encoding: "utf8",
    env: process.env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.status !== 0) throw new Error(`${script} failed (status ${r.status})`);
  if (echo) process.stdout.write(r.stdout.split("\n").slice(0, -2).join("\n").concat("\n"));
  return r.stdout;
}

function lastJsonLine<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as T;
}

export function printTable(rows: string[][]): void {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  for (const r of rows) {
    console.log(
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  "),
    );
  }
}

function cryptoSection(): CryptoBenchReport[] {
  console.log("\n== Olm / Megolm: Keyroom vs libolm, alternating batches in one process per back end ==");
  const node = lastJsonLine<CryptoBenchReport>(runChild("bench/crypto-compare.ts"));
  const noble = lastJsonLine<CryptoBenchReport>(runChild("bench/crypto-compare.ts", ["keyroom-noble"]));
  const rows: string[][] = [
    ["operation", "libolm", "keyroom node", "ratio (min–max)", "target", "cold", "of floor", "noble ratio"],
  ];
  for (const [op, label] of Object.entries(CRYPTO_OPS) as [CryptoOp, string][]) {
    const n = node.ops[op];
    const b = noble.ops[op];
    if (n === undefined) continue;
    const target = TARGETS[op];
    const floor = node.floors?.[op] ?? Number.NaN;
    rows.push([
      label,
      formatRate(n.libolm.median),
      formatRate(n.keyroom.median),
      formatRatio(n.ratio),
      target ? `≥${target}x ${n.ratio.median >= target ? "✓" : "✗"}` : "",
      `${(n.cold.keyroom / n.cold.libolm).toFixed(2)}x`,
      `${((n.keyroom.median / floor) * 100).toFixed(0)}%`,
      b === undefined ? "—" : formatRatio(b.ratio),
    ]);
  }
  printTable(rows);
  console.log(
    `Rates: operations per CPU second, median of ${node.reps} repetitions, each a sum over all of its\n` +
      "batches, Keyroom and libolm alternating in one process; ratio: per repetition, median (min–max).\n" +
      '"cold": the first (warm-up) round alone. "of floor": Keyroom\'s rate over the rate if the operation\n' +
      "cost nothing but the primitive calls it must make (timed alone). noble: the portable back end.",
  );
  return [node, noble];
}

const args = process.argv.slice(2);
const quick = args.includes("--quick");
if (quick) {
  process.env.KEYROOM_BENCH_QUICK = "1";
  process.env.KEYROOM_BENCH_SCALE ??= "0.05";
  process.env.KEYROOM_BENCH_DEVSERVER_MESSAGES ??= "50";
}
const SECTIONS = ["crypto", "e2ee", "cross-signing", "backup", "bots", "browser", "sync", "devserver"];
const sections = args.filter((a) => !a.startsWith("--"));
const unknown = sections.filter((s) => !SECTIONS.includes(s));
if (unknown.length > 0)
  throw new Error(`unknown section(s) ${unknown.join(", ")}; sections: ${SECTIONS.join(", ")}`);
const wanted = (name: string) => sections.length === 0 || sections.includes(name);
const machine = machineInfo();
const started = Date.now();
const results: Record<string, unknown> = { machine, quick };
console.log(
  `Keyroom benchmarks${quick ? " (--quick)" : ""} — ${machine.cores} × ${machine.cpu}, Node ${machine.node}, ` +
    `load average ${machine.loadavg.join(" ")}`,
);

/** Wall time of each section that ran, in ms (the run must stay under 20 minutes; issue 14). */
const sectionMs: Record<string, number> = {};
results.sectionMs = sectionMs;
/** The load average (1, 5, 15 min) as each section ended: the machine is shared with other work. */
const sectionLoadavg: Record<string, number[]> = {};
results.sectionLoadavg = sectionLoadavg;
/** Sections that threw: the others still run and the results file is still written (marked). */
const failures: { section: string; error: string }[] = [];
async function section(name: string, run: () => unknown): Promise<void> {
  if (!wanted(name)) return;
  const t0 = Date.now();
  try {
    await run();
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    failures.push({ section: name, error });
    console.log(`\n!! section ${name} FAILED: ${error}`);
  }
  sectionMs[name] = Date.now() - t0;
  sectionLoadavg[name] = loadavg().map((l) => Math.round(l * 100) / 100);
  console.log(`[${name}: ${((sectionMs[name] ?? 0) / 1000).toFixed(0)} s]`);
}

await section("crypto", () => {
  results.crypto = cryptoSection();
});
await section("e2ee", async () => {
  console.log("\n== E2EE engine: Keyroom vs matrix-sdk-crypto-wasm (vodozemac), same workloads ==");
  const report = await runE2eeBench();
  printE2eeReport(report);
  results.e2ee = report;
});
await section("cross-signing", () => {
  console.log("\n== Cross-signing: Keyroom vs matrix-sdk-crypto-wasm ==");
  results.crossSigning = lastJsonLine<unknown>(runChild("bench/cross-signing.ts", [], true));
});
await section("backup", () => {
  console.log("\n== Key backup: Keyroom vs matrix-sdk-crypto-wasm ==");
  results.backup = lastJsonLine<unknown>(runChild("bench/backup.ts", [], true));
});
await section("bots", () => {
  console.log("\n== Bots: Keyroom (encrypted rooms) vs matrix-bot-sdk (plain rooms), command round trips ==");
  results.bots = lastJsonLine<unknown>(runChild("bench/bots.ts", [], true));
});
await section("browser", () => {
  console.log("\n== In Chromium: Keyroom beside libolm WASM in one page, store open, bundle size ==");
  results.browser = lastJsonLine<unknown>(runChild("bench/browser/run.ts", [], true));
});
await section("sync", () => {
  console.log("\n== Initial sync of a large account: Keyroom (SQLite) vs matrix-js-sdk (Rust crypto) ==");
  results.sync = lastJsonLine<unknown>(runChild("bench/sync/run.ts", [], true));
  console.log(
    "\n== One message in a room of 5 000 members beside one of 10: Keyroom (SQLite client store) ==",
  );
  // Fails the section when the large room's response costs more than MAX_GROWTH times the small one's.
  results.syncLargeRoom = lastJsonLine<unknown>(runChild("bench/sync/large-room.ts", [], true));
});
await section("devserver", () => {
  console.log("\n== Development homeserver ==");
  results.devserver = lastJsonLine<unknown>(runChild("bench/devserver.ts", [], true));
});

if (failures.length > 0) results.failures = failures;
results.loadavgAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
results.durationMs = Date.now() - started;
console.log(
  `\n${((Date.now() - started) / 1000).toFixed(0)} s in all; load average at the end ${(results.loadavgAtEnd as number[]).join(" ")}`,
);
mkdirSync(`${root}/bench/results`, { recursive: true });
const json = `${JSON.stringify(results, null, 2)}\n`;
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
writeFileSync(`${root}/bench/results/${quick ? "quick" : "run"}-${stamp}.json`, json);
if (!quick && failures.length === 0) writeFileSync(`${root}/bench/results/latest.json`, json);
if (failures.length > 0) {
  console.log(`Failed: ${failures.map((f) => f.section).join(", ")} (the results file says why)`);
  process.exitCode = 1;
}
