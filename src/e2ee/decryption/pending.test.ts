/**
 * Any member of a room can send events naming sessions that do not exist: each one waits here for
 * a key that never comes, so the queue is bounded and the oldest give way.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_PENDING_EVENTS, PendingEvents } from "./pending.ts";

const event = (i: number) => ({
  event_id: `$e${i}`,
  sender: "@mallory:x",
  type: "m.room.encrypted",
  content: {},
});

describe("events waiting for their key", () => {
  it("holds at most MAX_PENDING_EVENTS, dropping the oldest first, across sessions", () => {
    const pending = new PendingEvents();
    pending.add("!r:x", "real", event(-1), "accept");
    for (let i = 0; i < MAX_PENDING_EVENTS + 10; i++) pending.add("!r:x", `junk${i}`, event(i), "accept");
    assert.equal(pending.size, MAX_PENDING_EVENTS);
    assert.deepEqual(pending.take("!r:x", "real"), [], "the oldest went first");
    assert.deepEqual(pending.take("!r:x", "junk10"), [
      { event: event(10), roomId: "!r:x", requirement: "accept" },
    ]);
    assert.deepEqual(pending.take("!r:x", "junk9"), []);
    // One event is kept once however often it is added.
    pending.add("!r:x", "s", event(0), "accept");
    pending.add("!r:x", "s", event(0), "accept");
    assert.equal(pending.take("!r:x", "s").length, 1);
  });
});
