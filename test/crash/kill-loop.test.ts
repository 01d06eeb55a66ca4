// Whole victim processes SIGKILLed at random moments while they sync, decrypt and send (see
// harness.ts): no room key lost, no event decrypted two ways, the device keys never change, no
// one-time key reused. The bounded version; kill-loop.long.test.ts runs many more kills.
import assert from "node:assert/strict";
import { after, it, describe as suite } from "node:test";
import { describe, KillLoop } from "./harness.ts";

suite("kill loop (SIGKILL at random points)", () => {
  const loop = new KillLoop({ kills: 8, foreignPeers: ["js-sdk", "nio"] });
  // The same loop against a crypto store that acknowledges saves before they are durable.
  const faulty = new KillLoop({ kills: 8, writeBehindMs: 1500, seed: 20261122 });
  after(async () => {
    await loop.dispose();
    await faulty.dispose();
  });

  it("8 kills: every key survives, no one-time key reused", { timeout: 90_000 }, async (t) => {
    const result = await loop.run();
    const text = describe(result);
    t.diagnostic(text);
    assert.deepEqual(result.problems, [], text);
    // The loop did something worth checking.
    assert.ok(result.stats.peerMessages > 0, text);
    assert.ok(result.stats.victimMessages > 0, text);
    assert.ok(result.stats.uploads > 0, text);
  });

  it("catches a crypto store whose saves are not durable when acknowledged", {
    timeout: 90_000,
  }, async (t) => {
    const result = await faulty.run();
    const text = describe(result);
    t.diagnostic(text);
    assert.ok(
      result.problems.some((p) =>
        /room key lost|uploaded again|claimed twice|not the one the victim uploaded|refused/.test(p),
      ),
      text,
    );
  });
});
