import assert from "node:assert/strict";
import { test } from "node:test";
import { type Clock, silentLogger } from "../index.ts";
import { Bot } from "./bot.ts";
import { MAX_SCHEDULER_SLEEP_MS, Scheduler, SchedulerError } from "./scheduler.ts";
import { fakeBotClient } from "./testing/fake-client.ts";
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

/**
 * A clock whose timers run on a monotonic time (as `setTimeout` does) while `now()` reads the wall
 * clock, which `step` moves on its own (an NTP correction, a suspend the timers did not count).
 */
class SteppedClock implements Clock {
  #mono = 0;
  #offset: number;
  readonly #timers: { at: number; resolve: () => void }[] = [];
  constructor(wall: number) {
    this.#offset = wall;
  }
  now(): number {
    return this.#mono + this.#offset;
  }
  random(): number {
    return 0.5;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = { at: this.#mono + Math.max(0, ms), resolve };
      this.#timers.push(timer);
      signal?.addEventListener("abort", () => {
        this.#timers.splice(this.#timers.indexOf(timer), 1);
        reject(new Error("aborted"));
      });
    });
  }
  /** Moves the wall clock alone. */
  step(ms: number): void {
    this.#offset += ms;
  }
  /** Moves both clocks by `ms`, firing the timers that fall due in order, each run let finish. */
  async tick(ms: number, settle: () => Promise<void>): Promise<void> {
    const target = this.#mono + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (next === undefined || next.at > target) break;
      this.#timers.shift();
      this.#mono = Math.max(this.#mono, next.at);
      next.resolve();
      await new Promise((r) => setImmediate(r));
      await settle();
    }
    this.#mono = target;
  }
}

test("a wall clock stepped back while a job waits does not run the job twice", async () => {
  const clock = new SteppedClock(Date.UTC(2026, 0, 1, 8, 59, 0));
  const scheduler = new Scheduler(clock, silentLogger, "UTC");
  const runs: string[] = [];
  scheduler.add("daily", "0 9 * * *", async (info) => {
    runs.push(`${new Date(info.scheduledAt).toISOString()} at ${new Date(clock.now()).toISOString()}`);
  });
  scheduler.start();
  await clock.tick(30_000, () => scheduler.idle());
  clock.step(-2_000); // NTP steps the clock back two seconds; the job's timer does not move
  await clock.tick(3_600_000, () => scheduler.idle());
  assert.deepEqual(runs, ["2026-01-01T09:00:00.000Z at 2026-01-01T09:00:00.000Z"]);
  // Stepped back while the job runs: the next run is still the next day's.
  scheduler.add("nine", "0 9 * * *", async () => {
    runs.push(new Date(clock.now()).toISOString());
    clock.step(-5_000);
  });
  await clock.tick(24 * 3_600_000, () => scheduler.idle());
  assert.equal(runs.length, 3, "one run of each job, once");
  scheduler.stop();
});

test("a job runs on time after a suspend that its timer did not count", async () => {
  const clock = new SteppedClock(Date.UTC(2026, 0, 1, 18, 0, 0));
  const scheduler = new Scheduler(clock, silentLogger, "UTC");
  const runs: number[] = [];
  scheduler.add("daily", "0 9 * * *", async () => void runs.push(clock.now()));
  scheduler.start();
  await clock.tick(60_000, () => scheduler.idle());
  clock.step(14 * 3_600_000); // suspended overnight: 08:01 on waking, the timer still 15 hours off
  await clock.tick(3_600_000, () => scheduler.idle());
  assert.equal(runs.length, 1, "the 09:00 run came");
  assert.ok((runs[0] ?? 0) - Date.UTC(2026, 0, 2, 9, 0, 0) <= MAX_SCHEDULER_SLEEP_MS, "and about on time");
  scheduler.stop();
});

test("bot.stop() waits for a job that is running, so the client is not closed under it", async () => {
  const f = await fakeBotClient();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 30));
  const bot = new Bot({ client: f.client, clock, logger: silentLogger });
  const order: string[] = [];
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  bot.schedule("report", "* * * * *", async () => {
    order.push("job started");
    await gate;
    order.push("job done");
  });
  await bot.start();
  await f.feed({});
  await clock.advance(60_000);
  assert.deepEqual(order, ["job started"]);
  const stopped = bot.stop().then(() => void order.push("stopped"));
  for (let i = 0; i < 100; i++) await new Promise((r) => setImmediate(r));
  release();
  await stopped;
  assert.deepEqual(order, ["job started", "job done", "stopped"]);
  await f.client.close();
});

test("a time zone croner cannot use is refused when the job is added, not thrown by its loop", () => {
  const scheduler = new Scheduler(new FakeClock(), silentLogger, "Europe/Nowhere");
  assert.throws(() => scheduler.add("daily", "0 9 * * *", async () => {}), SchedulerError);
  assert.deepEqual(scheduler.jobNames, []);
});
