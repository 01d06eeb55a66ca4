import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HeldKeyRequests, MAX_HELD_KEY_REQUESTS, MAX_HELD_KEY_REQUESTS_PER_DEVICE } from "./held.ts";

const req = (deviceId: string, n: number) => ({
  deviceId,
  requestId: `r${n}`,
  roomId: "!r",
  sessionId: `s${n}`,
});

describe("held key requests", () => {
  it("keeps each request once, and hands a device's requests over oldest first", () => {
    const held = new HeldKeyRequests();
    assert.equal(held.hold(req("A", 1)), true);
    assert.equal(held.hold(req("A", 1)), false);
    held.hold(req("B", 2));
    held.hold(req("A", 3));
    assert.deepEqual(
      held.take("A").map((r) => r.requestId),
      ["r1", "r3"],
    );
    assert.deepEqual(held.list(), [req("B", 2)]);
    held.cancel("B", "r2");
    assert.deepEqual(held.list(), []);
  });

  it("drops a device's oldest beyond its share, and the oldest overall beyond the total", () => {
    const held = new HeldKeyRequests();
    for (let i = 0; i < MAX_HELD_KEY_REQUESTS_PER_DEVICE + 5; i++) held.hold(req("A", i));
    const a = held.list();
    assert.equal(a.length, MAX_HELD_KEY_REQUESTS_PER_DEVICE);
    assert.equal(a[0]?.requestId, "r5");
    let n = 1000;
    for (let d = 0; held.list().length < MAX_HELD_KEY_REQUESTS; d++) {
      for (let i = 0; i < 10; i++) held.hold(req(`D${d}`, n++));
    }
    held.hold(req("Z", n++));
    assert.equal(held.list().length, MAX_HELD_KEY_REQUESTS);
    assert.equal(held.list()[0]?.requestId, "r6", "the oldest request overall went first");
  });
});
