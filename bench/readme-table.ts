// Prints the README's benchmark table (markdown) from a results file of `npm run bench`:
//   node --conditions=source --import tsx bench/readme-table.ts [bench/results/latest.json]
import { readFileSync } from "node:fs";
import { formatSpread, formatTarget } from "./e2ee/report.ts";
import type { E2eeBenchReport } from "./e2ee/run.ts";
import { formatRate } from "./harness.ts";
import { CRYPTO_OPS, type CryptoBenchReport, type CryptoOp } from "./ops.ts";
import { formatRatio, type MachineInfo, type SideResult, type Spread } from "./stats.ts";

interface Results {
  machine: MachineInfo;
  loadavgAtEnd?: number[];
  durationMs?: number;
  crypto?: CryptoBenchReport[];
  e2ee?: E2eeBenchReport;
  devserver?: { sendPerSec?: number; deliveredPerSec?: number; toDeviceLatencyMs?: { p50?: number } };
  backup?: BackupSection;
}

/** What bench/backup.ts prints (its last line). */
interface BackupSection {
  keys: number;
  backup: { sides: Record<string, SideResult>; ratio: Spread };
  restore: { sides: Record<string, SideResult>; ratio: Spread; keyroomSqliteWallMs: number };
}

const BACKUP_TARGET = 2;
const RESTORE_TARGET_MS = 10_000;

const CRYPTO_TARGETS: Partial<Record<CryptoOp, number>> = {
  megolmEncrypt: 2,
  megolmDecrypt: 2,
  olmOutbound: 4,
  olmInbound: 4,
};

const file = process.argv[2] ?? "bench/results/latest.json";
const r = JSON.parse(readFileSync(file, "utf8")) as Results;
const out: string[] = [];
out.push(
  "| Workload | Keyroom (SQLite store) | Peer | Ratio, median (min–max) | Target | Keyroom (memory store) |",
);
out.push("|---|---|---|---|---|---|");
const node = r.crypto?.[0];
if (node !== undefined) {
  for (const op of [
    "megolmEncrypt",
    "megolmDecrypt",
    "olmOutbound",
    "olmInbound",
    "accountCreate",
  ] as const) {
    const o = node.ops[op];
    if (o === undefined) continue;
    const t = CRYPTO_TARGETS[op];
    out.push(
      `| ${CRYPTO_OPS[op]} | ${formatRate(o.keyroom.median)} | libolm ${formatRate(o.libolm.median)} | ` +
        `${formatRatio(o.ratio)} | ${t === undefined ? "" : `≥ ${t}x ${o.ratio.median >= t ? "✓" : "✗"}`} | |`,
    );
  }
}
for (const row of r.e2ee?.rows ?? []) {
  if (row.id === "keysQuery" || row.id === "importRss") continue;
  const label = row.label.replace(/ \((ms|events\/s|MB|ms, once)\)$/, "");
  out.push(
    `| ${label} | ${formatSpread(row.unit, row.sqlite)} | ${row.wasm === undefined ? "" : `crypto-wasm ${formatSpread(row.unit, row.wasm)}`} | ` +
      `${row.ratio === undefined ? "" : formatRatio(row.ratio)} | ${formatTarget(row.target, row.pass)} | ` +
      `${formatSpread(row.unit, row.memory)} |`,
  );
}
const b = r.backup;
if (b !== undefined) {
  const median = (xs: readonly number[] = []): number =>
    [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const rate = (side: SideResult | undefined): string =>
    side === undefined ? "" : formatRate(median(side.cpuRates) * b.keys);
  const keys = b.keys.toLocaleString("en-US").replace(/,/g, " ");
  for (const [label, part] of [
    [`back up ${keys} room keys`, b.backup],
    [`restore ${keys} room keys from a backup`, b.restore],
  ] as const) {
    const met = part.ratio.median >= BACKUP_TARGET;
    out.push(
      `| ${label} | ${rate(part.sides["keyroom-sqlite"])} | crypto-wasm ${rate(part.sides["crypto-wasm"])} | ` +
        `${formatRatio(part.ratio)} | ≥${BACKUP_TARGET}x ${met ? "✓" : "✗"} | ${rate(part.sides["keyroom-memory"])} |`,
    );
  }
  const wall = b.restore.keyroomSqliteWallMs;
  out.push(
    `| restore ${keys} room keys, wall time (SQLite) | ${(wall / 1000).toFixed(1)} s | | | ` +
      `< ${RESTORE_TARGET_MS / 1000} s ${wall < RESTORE_TARGET_MS ? "✓" : "✗"} | |`,
  );
}
const d = r.devserver;
if (d !== undefined) {
  out.push(
    `| Devserver, 10 users in one room | ${d.sendPerSec} sends/s, ${d.deliveredPerSec} deliveries/s, ` +
      `to-device latency p50 ${d.toDeviceLatencyMs?.p50} ms | | | | |`,
  );
}
console.log(out.join("\n"));
const m = r.machine;
console.log(
  `\n${m.cores} × ${m.cpu}, Node ${m.node}; load average ${m.loadavg.join(" ")} at the start, ` +
    `${r.loadavgAtEnd?.join(" ") ?? "?"} at the end; ${((r.durationMs ?? 0) / 60_000).toFixed(1)} min.`,
);
