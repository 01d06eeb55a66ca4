// `node --conditions=source --import tsx bench/e2ee/main.ts`: the E2EE benchmark on its own. Prints a
// table (Keyroom beside matrix-sdk-crypto-wasm, ratios, targets) and writes
// bench/results/e2ee-<timestamp>.json. KEYROOM_BENCH_SCALE=0.1 for a quick run.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { printE2eeReport } from "./report.ts";
import { runE2eeBench } from "./run.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

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
