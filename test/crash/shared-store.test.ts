// Two processes on one store (issue 13), SIGKILLed at random points: each run starts a victim and
// a partner on the same crypto store, both syncing, decrypting and sending, taking turns on the
// store's lease (see harness.ts, `pair`). The checks are the kill loop's: no Megolm index used
// twice (the peer would refuse the second message as a replay), no one-time key uploaded twice or
// claimed twice, no Olm session forked (every room key still arrives both ways), no key lost, one
// device identity throughout. shared-store.long.test.ts runs many more kills.
import assert from "node:assert/strict";
import { after, it, describe as suite } from "node:test";
import { describe, KillLoop, killsFromEnv } from "./harness.ts";

// No time limits: each wait is on the victims' progress (harness.ts, docs/testing.md).
suite("two processes on one store (SIGKILL at random points)", () => {
  const kills = killsFromEnv(4);
  const loop = new KillLoop({ kills, pair: true, maxExtraDevices: 1 });
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
