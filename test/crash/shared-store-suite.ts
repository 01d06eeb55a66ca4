// The two-processes-on-one-store crash suite, run short by shared-store.test.ts and long by
// shared-store.long.test.ts (see the former for what it checks).
import assert from "node:assert/strict";
import { after, it, describe as suite } from "node:test";
import { describe, KillLoop, killsFromEnv } from "./harness.ts";

/** Registers the suite: `defaultKills` runs unless the environment says otherwise (`killsFromEnv`). */
export function sharedStoreSuite(defaultKills: number, maxExtraDevices: number): void {
  // No time limits: each wait is on the victims' progress (harness.ts, docs/testing.md).
  suite("two processes on one store (SIGKILL at random points)", () => {
    const kills = killsFromEnv(defaultKills);
    const loop = new KillLoop({ kills, pair: true, maxExtraDevices });
    after(() => loop.dispose());

    it(`${kills} runs of two processes: no index, one-time key or Olm session reused, no key lost`, async (t) => {
      const result = await loop.run();
      const text = describe(result);
      t.diagnostic(text);
      assert.deepEqual(result.problems, [], text);
      // Both processes worked on the store at once, and both sent.
      assert.ok(result.stats.pairedRuns > 0, text);
      assert.ok(result.stats.partnerMessages > 0, text);
      assert.ok(result.stats.victimMessages > result.stats.partnerMessages, text);
      assert.ok(result.stats.peerMessages > 0, text);
    });
  });
}
