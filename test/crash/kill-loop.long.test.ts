// The long kill loop (npm run test:long): 60 SIGKILLs of the victim (KEYROOM_CRASH_KILLS to change;
// the release check is 1 000, docs/testing.md), see harness.ts. No time limit: see kill-loop.test.ts.
import assert from "node:assert/strict";
import { after, it, describe as suite } from "node:test";
import { assertSyncWindowExercised, describe, KillLoop, killsFromEnv } from "./harness.ts";

suite("kill loop (SIGKILL at random points)", () => {
  const kills = killsFromEnv(60);
  const loop = new KillLoop({ kills, maxExtraDevices: 8, foreignPeers: ["js-sdk", "nio"] });
  after(() => loop.dispose());

  it(`${kills} kills: every key survives, no one-time key reused`, async (t) => {
    const result = await loop.run();
    const text = describe(result);
    t.diagnostic(text);
    assert.deepEqual(result.problems, [], text);
    assertSyncWindowExercised(result, text);
    // The loop did something worth checking.
    assert.ok(result.stats.peerMessages > 0, text);
    assert.ok(result.stats.victimMessages > 0, text);
    assert.ok(result.stats.uploads > 0, text);
  });
});
