import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_TIMER_DELAY_MS, sleepIn, systemClock, type Timers } from "./clock.ts";
import { NetworkError } from "./errors.ts";

/** Timers that fire when told to, recording the delays asked for. */
function manualTimers() {
  const asked: number[] = [];
  let pending: (() => void) | undefined;
  const timers: Timers = {
    setTimeout: (run, ms) => {
      asked.push(ms);
      pending = run;
      return asked.length;
    },
    clearTimeout: () => {
      pending = undefined;
    },
  };
  const fire = () => {
    const run = pending;
    pending = undefined;
    run?.();
  };
  return { timers, asked, fire, isPending: () => pending !== undefined };
}

describe("Clock.sleep", () => {
  it("waits past setTimeout's longest delay in steps, not at once", async () => {
    const t = manualTimers();
    let done = false;
    const slept = sleepIn(t.timers, 2 * MAX_TIMER_DELAY_MS + 5).then(() => {
      done = true;
    });
    assert.deepEqual(t.asked, [MAX_TIMER_DELAY_MS]);
    t.fire();
    await Promise.resolve();
    assert.equal(done, false);
    assert.deepEqual(t.asked, [MAX_TIMER_DELAY_MS, MAX_TIMER_DELAY_MS]);
    t.fire();
    assert.deepEqual(t.asked, [MAX_TIMER_DELAY_MS, MAX_TIMER_DELAY_MS, 5]);
    t.fire();
    await slept;
    assert.equal(done, true);
  });

  it("an abort during a later step rejects and leaves no timer", async () => {
    const t = manualTimers();
    const abort = new AbortController();
    const slept = sleepIn(t.timers, MAX_TIMER_DELAY_MS + 1, abort.signal);
    t.fire();
    assert.ok(t.isPending());
    abort.abort();
    await assert.rejects(slept, (e: unknown) => e instanceof NetworkError && e.code === "ABORTED");
    assert.ok(!t.isPending());
  });

  it("the system clock sleeps a short while and can be aborted", async () => {
    await systemClock.sleep(1);
    const abort = new AbortController();
    const slept = systemClock.sleep(MAX_TIMER_DELAY_MS * 3, abort.signal);
    abort.abort();
    await assert.rejects(slept, (e: unknown) => e instanceof NetworkError && e.code === "ABORTED");
  });
});
