// `npm run bench`: Keyroom (both primitives back ends) side by side with libolm in one run, printing
// ratios, and writing the figures to bench/results/. Each implementation runs in its own process so that
// back-end selection (a package condition) and JIT state don't leak between them.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { formatRate } from "./harness.ts";
import { CRYPTO_OPS, type CryptoBenchReport, type CryptoOp } from "./ops.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

function runChild(script: string, conditions: string[]): CryptoBenchReport {
  const args = [
    ...conditions.map((c) => `--conditions=${c}`),
    "--conditions=source",
    "--import",
    "tsx",
    script,
  ];
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8", env: process.env });
  if (r.status !== 0) throw new Error(`${script} failed:\n${r.stderr}`);
  const lastLine = r.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(lastLine) as CryptoBenchReport;
}

/** Targets from the foundation issue: minimum ratio to libolm for the Node back end. */
const TARGETS: Partial<Record<CryptoOp, number>> = {
  megolmEncrypt: 1.5,
  megolmDecrypt: 1.4,
  olmOutbound: 2.5,
  olmInbound: 2.5,
};

console.log(
  `Keyroom crypto benchmark — ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}`,
);
const node = runChild("bench/keyroom-crypto.ts", []);
const noble = runChild("bench/keyroom-crypto.ts", ["keyroom-noble"]);
const libolm = runChild("bench/libolm-crypto.ts", []);

const rows: string[][] = [
  [
    "operation",
    "libolm",
    "keyroom node",
    "ratio",
    "target",
    "floor (node)",
    "of floor",
    "keyroom noble",
    "ratio",
  ],
];
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
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows)
  console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
console.log(
  '\n"floor": the rate if the operation cost nothing but the primitive calls it must make (timed alone);',
);
console.log('"of floor" near 100% means the protocol code adds little on top of the primitives.');

mkdirSync(`${root}/bench/results`, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model,
  crypto: [node, noble, libolm],
};
writeFileSync(`${root}/bench/results/crypto-${stamp}.json`, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(`${root}/bench/results/latest.json`, `${JSON.stringify(results, null, 2)}\n`);
