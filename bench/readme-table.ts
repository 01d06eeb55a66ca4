// Prints the README's benchmark table (markdown) from a results file of `npm run bench`:
//   node --conditions=source --import tsx bench/readme-table.ts [bench/results/latest.json]
import { readFileSync } from "node:fs";
import { formatSpread, formatTarget } from "./e2ee/report.ts";
import type { E2eeBenchReport } from "./e2ee/run.ts";
import { formatRate } from "./harness.ts";
import { CRYPTO_OPS, type CryptoBenchReport, type CryptoOp } from "./ops.ts";
import { formatRatio, type MachineInfo, ratios, type SideResult, type Spread } from "./stats.ts";

interface Results {
  machine: MachineInfo;
  loadavgAtEnd?: number[];
  durationMs?: number;
  crypto?: CryptoBenchReport[];
  e2ee?: E2eeBenchReport;
  devserver?: { sendPerSec?: number; deliveredPerSec?: number; toDeviceLatencyMs?: { p50?: number } };
  backup?: BackupSection;
  crossSigning?: { users: number; keyroom: SideResult; wasm: SideResult };
  sync?: SyncSection;
  bots?: { results: BotResult[] };
  sectionMs?: Record<string, number>;
  failures?: { section: string; error: string }[];
}

/** What bench/sync/run.ts prints (its last line). */
interface SyncSection {
  reps: number;
  sizes: {
    rooms: number;
    events: number;
    reps?: number;
    growthOnly?: boolean;
    sides: Record<"keyroom" | "js-sdk", { cpuMs: Spread; peakRssMiB: Spread }>;
    cpuRatio?: Spread;
    rssRatio?: Spread;
  }[];
  crashes?: { rooms: number; side: string; rep: number; signal: string }[];
}

interface BotResult {
  side: string;
  encrypted: boolean;
  perSecond: number;
  spread?: number[];
}

/** What bench/backup.ts prints (its last line). */
interface BackupSection {
  keys: number;
  backup: { sides: Record<string, SideResult>; ratio: Spread };
  restore: { sides: Record<string, SideResult>; ratio: Spread; keyroomSqliteWallMs: number };
  /** One restore at the target's size (100 000 keys), Keyroom on SQLite; absent in older files. */
  restoreOnce?: { keys: number; wallMs: number; cpuMs: number; workers?: boolean };
}

const BACKUP_TARGET = 2;
const RESTORE_TARGET_MS = 10_000;

const CRYPTO_TARGETS: Partial<Record<CryptoOp, number>> = {
  megolmEncrypt: 2,
  megolmDecrypt: 2,
  olmOutbound: 4,
  olmInbound: 4,
};

const median = (xs: readonly number[] = []): number =>
  [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
const fmtMs = (v: number): string => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(0)} ms`);

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
  const once = b.restoreOnce ?? { keys: b.keys, wallMs: b.restore.keyroomSqliteWallMs, workers: false };
  const onceKeys = once.keys.toLocaleString("en-US").replace(/,/g, " ");
  out.push(
    `| restore ${onceKeys} room keys, wall time (SQLite${once.workers === true ? ", worker threads" : ""}${b.restoreOnce ? ", one run" : ""}) | ${(once.wallMs / 1000).toFixed(1)} s | | | ` +
      `< ${RESTORE_TARGET_MS / 1000} s ${once.wallMs < RESTORE_TARGET_MS ? "✓" : "✗"} | |`,
  );
}
const cs = r.crossSigning;
if (cs !== undefined) {
  const ratio = ratios(cs.keyroom.cpuRates, cs.wasm.cpuRates);
  out.push(
    `| cross-signing: one /keys/query answer for ${cs.users} users (users/s) | ${formatRate(median(cs.keyroom.cpuRates) * cs.users)} | ` +
      `crypto-wasm ${formatRate(median(cs.wasm.cpuRates) * cs.users)} | ${formatRatio(ratio)} | ` +
      `≥2x ${ratio.median >= 2 ? "✓" : "✗"} | |`,
  );
}
for (const z of r.sync?.sizes ?? []) {
  const k = z.sides.keyroom;
  const j = z.sides["js-sdk"];
  const ms = (x: Spread) =>
    x.n > 1 ? `${fmtMs(x.median)} (${fmtMs(x.min)}–${fmtMs(x.max)})` : fmtMs(x.median);
  const mib = (x: Spread) => `${x.median.toFixed(0)} MiB`;
  const label = `initial sync, ${z.rooms} rooms / ${z.events} events (client, CPU; peak RSS)`;
  if (z.cpuRatio === undefined || z.rssRatio === undefined) {
    out.push(
      `| ${label}, ${z.reps ?? 1} run, growth only | ${ms(k.cpuMs)}; ${mib(k.peakRssMiB)} | js-sdk ${ms(j.cpuMs)}; ${mib(j.peakRssMiB)} | | | |`,
    );
    continue;
  }
  const met = z.cpuRatio.median >= 2 && z.rssRatio.median <= 1;
  out.push(
    `| ${label} | ${ms(k.cpuMs)}; ${mib(k.peakRssMiB)} | js-sdk ${ms(j.cpuMs)}; ${mib(j.peakRssMiB)} | ` +
      `${formatRatio(z.cpuRatio)}; RSS ${z.rssRatio.median.toFixed(2)}x | ≥2x at ≤1x RSS ${met ? "✓" : "✗"} | |`,
  );
}
const bots = r.bots?.results;
const botEnc = bots?.find((b) => b.side === "keyroom" && b.encrypted);
const botSdk = bots?.find((b) => b.side === "matrix-bot-sdk");
if (botEnc !== undefined && botSdk !== undefined) {
  const ratio = botEnc.perSecond / botSdk.perSecond;
  const range = (b: BotResult) => (b.spread ? ` (${b.spread.map((x) => x.toFixed(0)).join("–")})` : "");
  out.push(
    `| bot commands answered/s (Keyroom encrypted rooms, matrix-bot-sdk plain) | ${botEnc.perSecond.toFixed(0)}/s${range(botEnc)} | ` +
      `matrix-bot-sdk ${botSdk.perSecond.toFixed(0)}/s${range(botSdk)} | ${ratio.toFixed(2)}x (of medians) | ≥1x ${ratio >= 1 ? "✓" : "✗"} | |`,
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
    `${r.loadavgAtEnd?.join(" ") ?? "?"} at the end; ${((r.durationMs ?? 0) / 60_000).toFixed(1)} min` +
    (r.sectionMs
      ? ` (${Object.entries(r.sectionMs)
          .map(([name, ms]) => `${name} ${(ms / 1000).toFixed(0)} s`)
          .join(", ")})`
      : "") +
    ".",
);
for (const c of r.sync?.crashes ?? [])
  console.log(
    `A ${c.side} sync child at ${c.rooms} rooms crashed (${c.signal}) and its repetition was run again.`,
  );
for (const f of r.failures ?? []) console.log(`Section ${f.section} FAILED: ${f.error}`);
