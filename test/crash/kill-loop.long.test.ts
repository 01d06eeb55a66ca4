// The long kill loop (npm run test:long): 60 SIGKILLs of the victim at random moments, see harness.ts.
import assert from "node:assert/strict";
import { after, it, describe as suite } from "node:test";
import { describe, KillLoop } from "./harness.ts";

suite("kill loop (SIGKILL at random points)", () => {
  const loop = new KillLoop({ kills: 60, maxExtraDevices: 8, foreignPeers: ["js-sdk", "nio"] });
  after(() => loop.dispose());

  it("60 kills: every key survives, no one-time key reused", { timeout: 600_000 }, async (t) => {
    const result = await loop.run();
    const text = describe(result);
    t.diagnostic(text);
    assert.deepEqual(result.problems, [], text);
    // The loop did something worth checking.
    assert.ok(result.stats.peerMessages > 0, text);
    assert.ok(result.stats.victimMessages > 0, text);
    assert.ok(result.stats.uploads > 0, text);
  });
});
