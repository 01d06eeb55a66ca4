// Keeps the benchmark's statistics from rotting (no timing is asserted: speed belongs in `npm run bench`).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { alternate, formatRatio, machineInfo, ratios, slope, spread } from "./stats.ts";

describe("bench statistics", () => {
  it("spread: median of odd and even counts, min and max, non-finite values left out", () => {
    assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
    assert.deepEqual(spread([4, 1, 3, 2, Number.NaN]), { median: 2.5, min: 1, max: 4, n: 4 });
    assert.equal(spread([]).n, 0);
    assert.equal(formatRatio(spread([])), "—");
  });

  it("ratios are per repetition", () => {
    const r = ratios([2, 4, 9], [1, 1, 3]);
    assert.deepEqual(r, { median: 3, min: 2, max: 4, n: 3 });
    assert.equal(formatRatio(r), "3.00x (2.00–4.00)");
    assert.throws(() => ratios([1], [1, 2]));
  });

  it("slope: least squares, the intercept dropping out; NaN without two distinct x", () => {
    assert.equal(slope([1, 2, 3, 4], [110, 120, 130, 140]), 10);
    // Noise around 5 + 2x: the fit is exact for the symmetric residuals below.
    assert.equal(slope([0, 1, 2, 3, 4], [5, 7 + 1, 9 - 2, 11 + 1, 13]), 2);
    assert.ok(Number.isNaN(slope([3], [1])));
    assert.ok(Number.isNaN(slope([2, 2], [1, 5])));
    assert.throws(() => slope([1, 2], [1]));
  });

  it("alternate: a cold round, then every side once per round in flipping order, all batches counted", async () => {
    const order: string[] = [];
    const done = { a: 0, b: 0 };
    const side = (name: "a" | "b") => ({
      name,
      run: async (ops: number) => {
        order.push(name);
        done[name] += ops;
        let x = 0;
        for (let i = 0; i < 10_000 * ops; i++) x += i;
        return x;
      },
    });
    const result = await alternate([side("a"), side("b")], { reps: 5, rounds: 2, batch: { a: 3, b: 2 } });
    assert.deepEqual(order.slice(0, 6), ["a", "b", "a", "b", "b", "a"]);
    assert.equal(order.length, 2 + 5 * 2 * 2);
    assert.equal(done.a, 3 * (1 + 10));
    assert.equal(done.b, 2 * (1 + 10));
    for (const r of Object.values(result)) {
      assert.equal(r.cpuRates.length, 5);
      assert.equal(r.wallRates.length, 5);
      assert.ok(r.cold > 0 && r.cpuRates.every((x) => x > 0));
    }
  });

  it("records the machine the figures come from", () => {
    const m = machineInfo();
    assert.ok(m.cores >= 1 && m.node.startsWith("v") && m.loadavg.length === 3);
  });
});
