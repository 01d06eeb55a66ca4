// Scheduled jobs: cron expressions (croner: a small, dependency-free, maintained cron parser with
// seconds and time zones) for *when*, the bot's `Clock` for *waiting*, so tests drive jobs with a
// fake clock. croner computes the next run; this module sleeps until it and runs the job, one run
// of a job at a time (a slow run delays the next, never overlaps it).
import { Cron } from "croner";
import type { Clock, Logger } from "../client/index.ts";

/** Jobs one bot may have (each is a sleeping loop). */
export const MAX_JOBS = 1_000;
/**
 * Longest single wait: timers run on a clock that a suspend (or a paused VM) does not advance,
 * so a job waits in steps and reads the wall clock between them: late by at most this after one.
 */
export const MAX_SCHEDULER_SLEEP_MS = 60_000;

export interface JobInfo {
  name: string;
  cron: string;
  /** When the job was due (the clock's time), not when it started. */
  scheduledAt: number;
}

interface Job {
  name: string;
  cron: string;
  cronner: Cron;
  run: (info: JobInfo) => Promise<void>;
  stop: AbortController;
  scope: string | undefined;
}

export class SchedulerError extends Error {
  override readonly name = "SchedulerError";
}

export class Scheduler {
  readonly #jobs = new Map<string, Job>();
  #started = false;
  /** Runs under way (from wake-up until the loop sleeps again), for `idle()`. */
  #busy = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly timezone?: string,
  ) {}

  /** Adds a job; `cron` is checked now (a bad expression throws, naming the job). */
  add(name: string, cron: string, run: (info: JobInfo) => Promise<void>, scope?: string): void {
    if (this.#jobs.has(name)) throw new SchedulerError(`a job named "${name}" exists already`);
    if (this.#jobs.size >= MAX_JOBS) throw new SchedulerError(`at most ${MAX_JOBS} jobs`);
    let cronner: Cron;
    try {
      cronner = new Cron(cron, { paused: true, ...(this.timezone ? { timezone: this.timezone } : {}) });
    } catch (e) {
      throw new SchedulerError(`job "${name}": bad cron expression "${cron}": ${(e as Error).message}`);
    }
    try {
      // An unknown time zone passes the constructor and throws here, which the job's loop would
      // have thrown as an unhandled rejection (ending the process).
      cronner.nextRun(new Date(this.clock.now()));
    } catch (e) {
      throw new SchedulerError(`job "${name}": bad time zone "${this.timezone}": ${(e as Error).message}`);
    }
    const job: Job = { name, cron, cronner, run, stop: new AbortController(), scope };
    this.#jobs.set(name, job);
    if (this.#started) void this.#loop(job);
  }

  /** Removes the jobs of one scope (a skill being reloaded). */
  removeScope(scope: string): void {
    for (const job of [...this.#jobs.values()]) {
      if (job.scope !== scope) continue;
      job.stop.abort();
      this.#jobs.delete(job.name);
    }
  }

  get jobNames(): string[] {
    return [...this.#jobs.keys()];
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const job of this.#jobs.values()) void this.#loop(job);
  }

  stop(): void {
    this.#started = false;
    for (const job of this.#jobs.values()) {
      job.stop.abort();
      job.stop = new AbortController();
    }
  }

  /** Resolves once no job is running (every loop is asleep until its next time). */
  idle(): Promise<void> {
    if (this.#busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #loop(job: Job): Promise<void> {
    const signal = job.stop.signal;
    /** The last run's time: the next is after it, even when the clock reads earlier now. */
    let last = Number.NEGATIVE_INFINITY;
    while (!signal.aborted) {
      const next = job.cronner.nextRun(new Date(Math.max(this.clock.now(), last)));
      if (next === null) return;
      const at = next.getTime();
      last = at;
      try {
        // Timers do not follow the wall clock: one stepped back meanwhile is waited out again,
        // one that jumped ahead (a suspend) is seen within MAX_SCHEDULER_SLEEP_MS.
        for (let left = at - this.clock.now(); left > 0; left = at - this.clock.now()) {
          await this.clock.sleep(Math.min(left, MAX_SCHEDULER_SLEEP_MS), signal);
        }
      } catch {
        return; // stopped
      }
      if (signal.aborted) return;
      this.#busy++;
      try {
        await job.run({ name: job.name, cron: job.cron, scheduledAt: at });
      } catch (err) {
        this.logger.error({ job: job.name, err }, "scheduled job failed");
      } finally {
        this.#busy--;
        if (this.#busy === 0) for (const w of this.#idleWaiters.splice(0)) w();
      }
    }
  }
}
