// Whole victim processes SIGKILLed at random moments while they sync, decrypt and send (see
// harness.ts): no room key lost, no event decrypted two ways, the device keys never change, no
// one-time key reused, every room key in the one key backup version (never a second version). The bounded version; kill-loop.long.test.ts runs many more kills. Two
// deliberately broken crypto stores show that the loop catches the bugs it exists for.
import assert from "node:assert/strict";
import { after, it, describe as suite } from "node:test";
import { assertSyncWindowExercised, describe, KillLoop, killsFromEnv } from "./harness.ts";

/** A short note for a broken store's run (the full report is in the assertion message). */
const caught = (problems: readonly string[]): string =>
  `the broken store was caught: ${problems.length} problems, first: ${problems[0] ?? "none"}`;

// No time limits: each wait in the loop is on the victim's progress, and its one hang check
// scales with how long start-ups take on this machine now (harness.ts).
suite("kill loop (SIGKILL at random points)", () => {
  const kills = killsFromEnv(8);
  const loop = new KillLoop({ kills, foreignPeers: ["js-sdk", "nio"] });
  // Received room keys committed 1.5 s after the rest of the step (and its sync token); each run
  // that receives one dies inside that window, so the loss does not depend on where a random kill
  // lands on this machine.
  const lateKeys = new KillLoop({
    kills: 5,
    seed: 20261122,
    fault: { kind: "late-room-keys", delayMs: 1500, killWhilePending: true },
  });
  // Every save acknowledged at once and committed 1.5 s later.
  const writeBehind = new KillLoop({
    kills: 4,
    seed: 11222026,
    fault: { kind: "write-behind", delayMs: 1500 },
  });
  after(async () => {
    await loop.dispose();
    await lateKeys.dispose();
    await writeBehind.dispose();
  });

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
    assert.ok(result.stats.backupUploads > 0, text);
    assert.ok(result.stats.backedUpSessions > 0, text);
  });

  it("catches room keys committed after the sync token that delivered them", async (t) => {
    const result = await lateKeys.run();
    const text = describe(result);
    t.diagnostic(caught(result.problems));
    assert.ok(
      result.problems.some((p) => /room key lost/.test(p)),
      text,
    );
  });

  it("catches a crypto store whose saves are not durable when acknowledged", async (t) => {
    const result = await writeBehind.run();
    const text = describe(result);
    t.diagnostic(caught(result.problems));
    assert.ok(
      result.problems.some((p) =>
        /uploaded again|claimed twice|not the one the victim uploaded|refused|device/.test(p),
      ),
      text,
    );
  });
});
