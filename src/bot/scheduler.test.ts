import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../index.ts";
import { Scheduler, SchedulerError } from "./scheduler.ts";
import { FakeClock } from "./testing/fake-clock.ts";

test("cron jobs run at their times on the fake clock, a failing run does not stop the job", async () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 30));
  const scheduler = new Scheduler(clock, silentLogger, "UTC");
  const runs: string[] = [];
  scheduler.add("minutely", "* * * * *", async (info) => {
    runs.push(new Date(info.scheduledAt).toISOString().slice(11, 16));
    if (runs.length === 1) throw new Error("first run fails");
  });
  scheduler.start();
  await clock.advance(3 * 60_000, () => scheduler.idle());
  assert.deepEqual(runs, ["12:01", "12:02", "12:03"]);
  scheduler.removeScope("none");
  scheduler.stop();
  await clock.advance(5 * 60_000);
  assert.equal(runs.length, 3, "stopped");
  assert.throws(() => scheduler.add("bad", "every tuesday", async () => {}), SchedulerError);
  assert.throws(() => scheduler.add("minutely", "* * * * *", async () => {}), /exists already/);
});
