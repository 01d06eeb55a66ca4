// The memory row's arithmetic (no measurement here: RSS belongs in `npm run bench`).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MemoryChildReport } from "./memory.ts";
import { growthPer1000, memoryRow } from "./memory.ts";

/** A child's report whose RSS is `base` + `perSession` MB a session, plus `warmUp` MB at the first point. */
function report(side: string, perSession: number, warmUp = 0, base = 100): MemoryChildReport {
  const points = [1, 2, 3, 4].map((c) => ({
    sessions: c * 1000,
    rssMb: base + perSession * c * 1000 + (c === 1 ? warmUp : 0),
    heapUsedMb: 10,
  }));
  return { side, empty: { sessions: 0, rssMb: base, heapUsedMb: 10 }, points, heldSamples: 40, samples: 40 };
}

describe("memory row", () => {
  it("growth per 1 000 sessions leaves out the first chunk's point (the process's warm-up)", () => {
    assert.equal(growthPer1000(report("memory", 0.001)), 1);
    assert.equal(growthPer1000(report("memory", 0.002, 30)), 2);
    assert.equal(growthPer1000(report("memory", 0.002, 30, 500)), 2);
  });

  it("Keyroom's advantage is crypto-wasm's growth over Keyroom's, per repetition", () => {
    const row = memoryRow(
      {
        sqlite: [report("sqlite", 0.001), report("sqlite", 0.002)],
        memory: [report("memory", 0.004), report("memory", 0.004)],
        wasm: [report("wasm", 0.004), report("wasm", 0.002)],
      },
      { chunkSize: 1000, chunks: 4 },
      100,
    );
    assert.equal(row.unit, "MB");
    assert.deepEqual(row.sqlite, { median: 1.5, min: 1, max: 2, n: 2 });
    assert.deepEqual(row.ratio, { median: 2.5, min: 1, max: 4, n: 2 });
    assert.deepEqual(row.memoryRatio, { median: 0.75, min: 0.5, max: 1, n: 2 });
  });
});
