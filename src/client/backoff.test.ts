import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  backoffDelay,
  MAX_RATE_LIMITED_RETRIES,
  MAX_RATE_LIMITED_WAIT_MS,
  MAX_RETRY_AFTER_MS,
  withRetry,
} from "./backoff.ts";
import type { Clock } from "./clock.ts";
import { MatrixError, NetworkError } from "./errors.ts";

function fakeClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => 0,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  };
}

const policy = { baseMs: 100, maxMs: 1000, maxAttempts: 5 };

describe("backoffDelay", () => {
  it("doubles the ceiling per attempt, caps it, and jitters within [ceiling/2, ceiling]", () => {
    const err = new NetworkError("NETWORK", "x");
    assert.equal(
      backoffDelay(policy, 0, err, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(policy, 0, err, () => 0.999999),
      100,
    );
    assert.equal(
      backoffDelay(policy, 3, err, () => 0),
      400,
    );
    assert.equal(
      backoffDelay(policy, 10, err, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(policy, 1e9, err, () => 1),
      1000,
    );
  });

  it("uses the server's retry_after_ms, capped", () => {
    const limited = new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 2500 });
    assert.equal(
      backoffDelay(policy, 0, limited, () => 0),
      2500,
    );
    const huge = new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1e12 });
    assert.equal(
      backoffDelay(policy, 0, huge, () => 0),
      MAX_RETRY_AFTER_MS,
    );
  });
});

describe("withRetry", () => {
  it("retries transient failures and returns the first success", async () => {
    const clock = fakeClock();
    const errors = [
      new NetworkError("NETWORK", "down"),
      new MatrixError(503, undefined),
      new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 777 }),
    ];
    let calls = 0;
    const v = await withRetry(
      async () => {
        const e = errors[calls++];
        if (e) throw e;
        return "done";
      },
      { policy, clock },
    );
    assert.equal(v, "done");
    assert.equal(calls, 4);
    assert.deepEqual(clock.sleeps, [75, 150, 777]);
  });

  it("does not retry client errors", async () => {
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new MatrixError(403, { errcode: "M_FORBIDDEN" });
      },
      { policy, clock: fakeClock() },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError);
    assert.equal(calls, 1);
  });

  it("gives up after maxAttempts with the last error", async () => {
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new NetworkError("NETWORK", `n${calls}`);
      },
      { policy, clock: fakeClock() },
    ).catch((e: unknown) => e);
    assert.equal(calls, 5);
    assert.ok(err instanceof NetworkError && err.message === "n5");
  });

  it("does not count rate limits against maxAttempts, but bounds them too", async () => {
    const limited = () => new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 10 });
    const clock = fakeClock();
    let calls = 0;
    const v = await withRetry(
      async () => {
        calls++;
        if (calls <= 20) throw limited();
        if (calls <= 24) throw new NetworkError("NETWORK", "down");
        return "done";
      },
      { policy, clock },
    );
    assert.equal(v, "done", "20 rate limits and 4 failures fit in a 5-attempt policy");
    assert.equal(calls, 25);
    assert.deepEqual(
      clock.sleeps.slice(20),
      [75, 150, 300, 600],
      "failures back off from their own first step",
    );

    calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw limited();
      },
      { policy, clock: fakeClock() },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError && err.isRateLimited);
    assert.equal(calls, MAX_RATE_LIMITED_RETRIES + 1);
  });

  it("gives up when the rate-limited waits add up to MAX_RATE_LIMITED_WAIT_MS", async () => {
    const clock = fakeClock();
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: MAX_RETRY_AFTER_MS });
      },
      { policy, clock },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError && err.isRateLimited);
    assert.equal(calls, MAX_RATE_LIMITED_WAIT_MS / MAX_RETRY_AFTER_MS + 1);
    assert.ok(clock.sleeps.reduce((a, b) => a + b, 0) <= MAX_RATE_LIMITED_WAIT_MS);
  });

  it("waits out rate limits for ever under a policy that retries for ever", async () => {
    let calls = 0;
    const v = await withRetry(
      async () => {
        if (++calls <= MAX_RATE_LIMITED_RETRIES + 5)
          throw new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: MAX_RETRY_AFTER_MS });
        return "synced";
      },
      { policy: { ...policy, maxAttempts: Infinity }, clock: fakeClock() },
    );
    assert.equal(v, "synced");
  });

  it("backs off rate limits that name no wait, under a policy that retries for ever too", async () => {
    const clock = fakeClock();
    let calls = 0;
    await withRetry(
      async () => {
        if (++calls <= 6) throw new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED" });
        return "synced";
      },
      { policy: { ...policy, maxAttempts: Infinity }, clock },
    );
    assert.deepEqual(clock.sleeps, [75, 150, 300, 600, 750, 750]);
  });

  it("retries nothing, rate limits included, with maxAttempts 1", async () => {
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new MatrixError(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 10 });
      },
      { policy: { ...policy, maxAttempts: 1 }, clock: fakeClock() },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError && err.isRateLimited);
    assert.equal(calls, 1);
  });
});
