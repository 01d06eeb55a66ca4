import assert from "node:assert/strict";
import { test } from "node:test";
import { RateLimiter } from "./rate-limit.ts";

test("per-user buckets: a burst, then one per interval, the first refusal flagged", () => {
  let now = 0;
  const limiter = new RateLimiter({ perMinute: 6, burst: 2 }, { now: () => now });
  assert.deepEqual(limiter.take("@a:x"), { allowed: true });
  assert.deepEqual(limiter.take("@a:x"), { allowed: true });
  assert.deepEqual(limiter.take("@a:x"), { allowed: false, retryInMs: 10_000, first: true });
  assert.equal((limiter.take("@a:x") as { first: boolean }).first, false, "answered once");
  assert.deepEqual(limiter.take("@b:x"), { allowed: true }, "users are separate");
  now += 10_000;
  assert.deepEqual(limiter.take("@a:x"), { allowed: true });
});
