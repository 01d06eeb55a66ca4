// Child process of `npm run bench`: Keyroom's Olm/Megolm (the primitives back end this process
// resolved) and libolm in ONE process, in alternating batches (bench/stats.ts). Prints one JSON
// report (CryptoBenchReport) as its last line. KEYROOM_BENCH_QUICK=1: shorter batches.
// KEYROOM_BENCH_OPS=megolmDecrypt,megolmEncrypt: only those rows (for profiling one operation).
import { loadLibolm } from "../test/support/libolm.ts";
import { backendName, keyroomFloors, keyroomOps } from "./keyroom-crypto.ts";
import { libolmOps } from "./libolm-crypto.ts";
import { CRYPTO_OPS, type CryptoBenchReport, type CryptoOp, type OpSet } from "./ops.ts";
import { alternate, cpuMs, machineInfo, ratios, spread } from "./stats.ts";

const quick = process.env.KEYROOM_BENCH_QUICK === "1";
const REPS = 5;
const ROUNDS = quick ? 2 : 4;
/** CPU milliseconds one batch should take. */
const BATCH_MS = quick ? 8 : 40;

const olm = await loadLibolm();
if (!olm) throw new Error("libolm could not be loaded");
const machine = machineInfo();
const sides: Record<"keyroom" | "libolm", OpSet> = { keyroom: keyroomOps(), libolm: libolmOps(olm) };
let sink: unknown;

/** Operations that take about BATCH_MS of CPU (measured on a short untimed run). */
function calibrate(fn: () => unknown): number {
  let n = 1;
  for (;;) {
    const c0 = cpuMs();
    for (let i = 0; i < n; i++) sink = fn();
    const dt = cpuMs() - c0;
    if (dt >= BATCH_MS / 4 || n >= 1 << 20)
      return Math.max(1, Math.round((n * BATCH_MS) / Math.max(dt, 0.01)));
    n *= 2;
  }
}

const report: CryptoBenchReport = { backend: backendName, machine, reps: REPS, ops: {} };
const only = process.env.KEYROOM_BENCH_OPS?.split(",");
for (const op of Object.keys(CRYPTO_OPS) as CryptoOp[]) {
  if (only !== undefined && !only.includes(op)) continue;
  const batch = { keyroom: calibrate(sides.keyroom[op]), libolm: calibrate(sides.libolm[op]) };
  const result = await alternate(
    (["keyroom", "libolm"] as const).map((name) => ({
      name,
      run: (ops: number) => {
        const fn = sides[name][op];
        for (let i = 0; i < ops; i++) sink = fn();
      },
    })),
    { reps: REPS, rounds: ROUNDS, batch },
  );
  const k = result.keyroom as NonNullable<(typeof result)["keyroom"]>;
  const l = result.libolm as NonNullable<(typeof result)["libolm"]>;
  report.ops[op] = {
    keyroom: spread(k.cpuRates),
    libolm: spread(l.cpuRates),
    ratio: ratios(k.cpuRates, l.cpuRates),
    wallRatio: ratios(k.wallRates, l.wallRates),
    cold: { keyroom: k.cold, libolm: l.cold },
  };
  process.stderr.write(`  ${CRYPTO_OPS[op]}: ${report.ops[op]?.ratio.median.toFixed(2)}x\n`);
}
if (only === undefined) report.floors = keyroomFloors(quick ? 100 : 400);
if (sink === Symbol.for("never")) console.log("");
console.log(JSON.stringify(report));
