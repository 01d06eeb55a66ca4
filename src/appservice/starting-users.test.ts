// What is held for a virtual user while it starts: its to-device messages only (not another
// user's), a retried transaction's once, at most MAX_TO_DEVICE_HELD_WHILE_STARTING of them; and
// nothing for a user that is not starting.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_TO_DEVICE_HELD_WHILE_STARTING, StartingUsers } from "./starting-users.ts";
import { parseTransaction } from "./transaction.ts";

const toDevice = (to: string, n: number) => ({
  type: "m.room.encrypted",
  sender: "@alice:hs",
  to_user_id: to,
  to_device_id: "DEV",
  content: { n },
});
const txn = (...messages: ReturnType<typeof toDevice>[]) =>
  parseTransaction({ events: [], to_device: messages });

describe("StartingUsers", () => {
  it("holds a starting user's messages in order, a retried transaction's once, until taken", () => {
    const s = new StartingUsers();
    assert.equal(s.hold("t0", txn(toDevice("@v_a:hs", 0))), 0);
    s.begin("@v_a:hs");
    s.hold("t1", txn(toDevice("@v_a:hs", 1), toDevice("@v_b:hs", 9), toDevice("@v_a:hs", 2)));
    s.hold("t1", txn(toDevice("@v_a:hs", 1), toDevice("@v_a:hs", 2)));
    s.hold("t2", txn(toDevice("@v_a:hs", 3)));
    assert.deepEqual(
      s.take("@v_a:hs").map((m) => m.content.n),
      [1, 2, 3],
    );
    assert.deepEqual(s.take("@v_a:hs"), [], "no longer starting");
    s.hold("t3", txn(toDevice("@v_a:hs", 4)));
    assert.deepEqual(s.take("@v_a:hs"), []);
  });

  it("holds at most MAX_TO_DEVICE_HELD_WHILE_STARTING per user; more are dropped and counted", () => {
    const s = new StartingUsers();
    s.begin("@v_a:hs");
    const many = Array.from({ length: MAX_TO_DEVICE_HELD_WHILE_STARTING + 5 }, (_, i) =>
      toDevice("@v_a:hs", i),
    );
    assert.equal(s.hold("t1", txn(...many)), 5);
    assert.equal(s.hold("t2", txn(toDevice("@v_a:hs", -1))), 1);
    assert.equal(s.take("@v_a:hs").length, MAX_TO_DEVICE_HELD_WHILE_STARTING);
  });
});
