import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CLAIM_FAILURE_BACKOFF_MS, ClaimBackoff, MAX_CLAIM_FAILURES } from "./claim-backoff.ts";

const T0 = 1_700_000_000_000;

describe("ClaimBackoff", () => {
  it("backs a device off after a failed claim, until the back-off passes or a claim succeeds", () => {
    const b = new ClaimBackoff();
    b.failed("a", T0);
    b.failed("b", T0);
    assert.equal(b.allows("a", T0 + CLAIM_FAILURE_BACKOFF_MS - 1), false);
    assert.equal(b.allows("a", T0 + CLAIM_FAILURE_BACKOFF_MS), true);
    b.succeeded("b");
    assert.equal(b.allows("b", T0), true);
  });

  it("remembers at most MAX_CLAIM_FAILURES devices (made-up devices with no keys), the oldest forgotten first", () => {
    const b = new ClaimBackoff();
    const extra = 100;
    for (let i = 0; i < MAX_CLAIM_FAILURES + extra; i++) b.failed(`key${i}`, T0 + i);
    assert.equal(b.size, MAX_CLAIM_FAILURES);
    const now = T0 + MAX_CLAIM_FAILURES + extra;
    assert.equal(b.allows("key0", now), true, "the oldest was forgotten");
    assert.equal(b.allows(`key${extra - 1}`, now), true);
    assert.equal(b.allows(`key${extra}`, now), false, "the newest are still backing off");
    assert.equal(b.allows(`key${MAX_CLAIM_FAILURES + extra - 1}`, now), false);
  });

  it("forgets expired entries as new failures come", () => {
    const b = new ClaimBackoff();
    for (let i = 0; i < 50; i++) b.failed(`key${i}`, T0);
    b.failed("late", T0 + CLAIM_FAILURE_BACKOFF_MS);
    assert.equal(b.size, 1);
    assert.equal(b.allows("late", T0 + CLAIM_FAILURE_BACKOFF_MS), false);
  });

  it("a failure again moves the device to the newest end", () => {
    const b = new ClaimBackoff();
    b.failed("first", T0);
    for (let i = 1; i < MAX_CLAIM_FAILURES; i++) b.failed(`key${i}`, T0);
    b.failed("first", T0 + 1);
    b.failed("next", T0 + 1);
    assert.equal(b.size, MAX_CLAIM_FAILURES);
    assert.equal(b.allows("first", T0 + 1), false, "kept: it failed again");
    assert.equal(b.allows("key1", T0 + 1), true, "the oldest other one went instead");
  });
});
