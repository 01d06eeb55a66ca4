// What is held for a virtual user while it starts: its to-device messages only (not another
// user's; each with its transaction, in order, Olm-encrypted or not) and the room events of
// each transaction, a retried transaction's once, at most MAX_TO_DEVICE_HELD_WHILE_STARTING
// messages and MAX_ROOM_EVENTS_HELD_WHILE_STARTING events (more are dropped and counted); a
// transaction of device-list changes only recorded as held too (at most
// MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING of them); and nothing for a user that is not starting.
// A user whose start failed is still held for, what was held kept, until it starts again (at most
// MAX_FAILED_STARTS_HELD such users: past it the first to fail is dropped, and counted).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type HeldWhileStarting,
  MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING,
  MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING,
  MAX_FAILED_STARTS_HELD,
  MAX_RECEIPTS_HELD_WHILE_STARTING,
  MAX_ROOM_EVENTS_HELD_WHILE_STARTING,
  MAX_TO_DEVICE_HELD_WHILE_STARTING,
  StartingUsers,
} from "./starting-users.ts";
import { parseTransaction } from "./transaction.ts";

const toDevice = (to: string, n: number) => ({
  type: "m.room.encrypted",
  sender: "@alice:hs",
  to_user_id: to,
  to_device_id: "DEV",
  content: { n },
});
const event = (n: number) => ({
  event_id: `$${n}`,
  type: "m.room.message",
  sender: "@alice:hs",
  room_id: "!r:hs",
  origin_server_ts: n,
  content: { body: `${n}` },
});
/** The to-device messages held for a user, in order. */
const messagesOf = (held: HeldWhileStarting) => held.txns.flatMap((t) => t.toDevice);
/** No counts. */
const NONE = { toDevice: 0, roomEvents: 0, receipts: 0, deviceListUsers: 0 };
/** What is held for a user for whom nothing is. */
const NOTHING_HELD = {
  deviceLists: { changed: [], left: [] },
  deviceListsOverflowed: false,
  txns: [],
};
const txn = (messages: ReturnType<typeof toDevice>[], events: ReturnType<typeof event>[] = []) =>
  parseTransaction({ events, to_device: messages });

/** A transaction of device-list changes only. */
const lists = (changed: string[], left: string[] = []) =>
  parseTransaction({ events: [], device_lists: { changed, left } });
/** A transaction of ephemeral events: a read receipt and a typing notice for each of `rooms`. */
const ephemeral = (...rooms: string[]) =>
  parseTransaction({
    events: [],
    ephemeral: rooms.flatMap((room_id) => [
      { type: "m.receipt", room_id, content: { $1: { "m.read": { "@alice:hs": { ts: 1 } } } } },
      { type: "m.typing", room_id, content: { user_ids: ["@alice:hs"] } },
    ]),
  });

describe("StartingUsers", () => {
  it("holds a starting user's messages in order, a retried transaction's once, until taken", () => {
    const s = new StartingUsers();
    assert.deepEqual(s.hold("t0", txn([toDevice("@v_a:hs", 0)])), []);
    s.begin("@v_a:hs");
    s.hold("t1", txn([toDevice("@v_a:hs", 1), toDevice("@v_b:hs", 9), toDevice("@v_a:hs", 2)]));
    s.hold("t1", txn([toDevice("@v_a:hs", 1), toDevice("@v_a:hs", 2)]));
    s.hold("t2", txn([toDevice("@v_a:hs", 3)]));
    assert.deepEqual(
      messagesOf(s.take("@v_a:hs")).map((m) => m.content.n),
      [1, 2, 3],
    );
    assert.deepEqual(s.take("@v_a:hs"), NOTHING_HELD, "no longer starting");
    s.hold("t3", txn([toDevice("@v_a:hs", 4)]));
    assert.deepEqual(messagesOf(s.take("@v_a:hs")), []);
  });

  it("holds each message with its transaction, in order, Olm-encrypted or not", () => {
    const s = new StartingUsers();
    s.begin("@v_a:hs");
    const plain = (type: string, n: number) => ({ ...toDevice("@v_a:hs", n), type });
    s.hold(
      "t1",
      txn([toDevice("@v_a:hs", 1), plain("m.key.verification.request", 2), plain("org.example", 3)]),
    );
    s.hold("t2", txn([plain("org.example", 4), toDevice("@v_a:hs", 5)]));
    const held = s.take("@v_a:hs");
    assert.deepEqual(
      held.txns.map(({ txnId, toDevice }) => [txnId, toDevice.map((m) => [m.type, m.content.n])]),
      [
        [
          "t1",
          [
            ["m.room.encrypted", 1],
            ["m.key.verification.request", 2],
            ["org.example", 3],
          ],
        ],
        [
          "t2",
          [
            ["org.example", 4],
            ["m.room.encrypted", 5],
          ],
        ],
      ],
    );
    assert.deepEqual(s.failed("@v_a:hs"), { kept: NONE });
  });

  it("holds the room events of each transaction for every starting user, in order, a retry's once", () => {
    const s = new StartingUsers();
    s.hold("t0", txn([], [event(0)]));
    s.begin("@v_a:hs");
    s.hold("t1", txn([], [event(1), event(2)]));
    s.begin("@v_b:hs");
    s.hold("t1", txn([], [event(1), event(2)]));
    s.hold("t2", txn([toDevice("@v_b:hs", 1)]));
    s.hold("t3", txn([], [event(3)]));
    const ids = (userId: string) =>
      s.take(userId).txns.map(({ txnId, events }) => [txnId, events.map((e) => e.event_id)]);
    assert.deepEqual(ids("@v_a:hs"), [
      ["t1", ["$1", "$2"]],
      ["t3", ["$3"]],
    ]);
    assert.deepEqual(ids("@v_b:hs"), [
      ["t1", ["$1", "$2"]],
      ["t2", []],
      ["t3", ["$3"]],
    ]);
  });

  it("holds at most MAX_TO_DEVICE_HELD_WHILE_STARTING per user; more are dropped and counted", () => {
    const s = new StartingUsers();
    s.begin("@v_a:hs");
    const many = Array.from({ length: MAX_TO_DEVICE_HELD_WHILE_STARTING + 5 }, (_, i) =>
      toDevice("@v_a:hs", i),
    );
    assert.deepEqual(s.hold("t1", txn(many)), [{ userId: "@v_a:hs", ...NONE, toDevice: 5, roomEvents: 0 }]);
    assert.deepEqual(s.hold("t2", txn([toDevice("@v_a:hs", -1)])), [
      { userId: "@v_a:hs", ...NONE, toDevice: 1, roomEvents: 0 },
    ]);
    assert.equal(messagesOf(s.take("@v_a:hs")).length, MAX_TO_DEVICE_HELD_WHILE_STARTING);
  });

  it("holds at most MAX_ROOM_EVENTS_HELD_WHILE_STARTING room events per user, the first ones", () => {
    const s = new StartingUsers();
    s.begin("@v_a:hs");
    const half = MAX_ROOM_EVENTS_HELD_WHILE_STARTING / 2;
    const events = (from: number, n: number) => Array.from({ length: n }, (_, i) => event(from + i));
    assert.deepEqual(s.hold("t1", txn([], events(0, half))), []);
    assert.deepEqual(s.hold("t2", txn([toDevice("@v_a:hs", 1)], events(half, half + 3))), [
      { userId: "@v_a:hs", ...NONE, toDevice: 0, roomEvents: 3 },
    ]);
    // Full: a transaction's events are all dropped; its to-device messages are still held.
    assert.deepEqual(s.hold("t3", txn([toDevice("@v_a:hs", 2)], events(-2, 2))), [
      { userId: "@v_a:hs", ...NONE, toDevice: 0, roomEvents: 2 },
    ]);
    // Nothing of it kept: not recorded, so a retry is counted again (and still not kept).
    assert.deepEqual(s.hold("t4", txn([], events(-4, 1))), [
      { userId: "@v_a:hs", ...NONE, toDevice: 0, roomEvents: 1 },
    ]);
    const held = s.take("@v_a:hs");
    const kept = held.txns.flatMap((t) => t.events.map((e) => e.origin_server_ts));
    assert.equal(kept.length, MAX_ROOM_EVENTS_HELD_WHILE_STARTING);
    assert.deepEqual(
      kept,
      [...Array(MAX_ROOM_EVENTS_HELD_WHILE_STARTING).keys()],
      "the first ones, in order",
    );
    assert.deepEqual(
      held.txns.map((t) => t.txnId),
      ["t1", "t2", "t3"],
    );
    assert.equal(messagesOf(held).length, 2);
  });

  it("holds each user's last device-list change, at most MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING users", () => {
    const s = new StartingUsers();
    s.hold("t0", lists(["@x:hs"]));
    s.begin("@v_a:hs");
    s.hold("t1", lists(["@b:hs", "@c:hs"], ["@d:hs"]));
    s.hold("t2", lists(["@d:hs"], ["@b:hs"]));
    s.hold("t2", lists(["@d:hs"], ["@b:hs"]));
    assert.deepEqual(s.held("@v_a:hs").deviceLists, { changed: ["@c:hs", "@d:hs"], left: ["@b:hs"] });
    assert.equal(s.held("@v_a:hs").deviceListsOverflowed, false);
    const many = Array.from({ length: MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING }, (_, i) => `@u${i}:hs`);
    // Three users held already: three of the new ones are past the bound.
    assert.deepEqual(s.hold("t3", lists(many)), [{ userId: "@v_a:hs", ...NONE, deviceListUsers: 3 }]);
    // A user held already still has its change replaced.
    assert.deepEqual(s.hold("t4", lists(["@c:hs"], ["@u0:hs", "@new:hs"])), [
      { userId: "@v_a:hs", ...NONE, deviceListUsers: 1 },
    ]);
    const held = s.take("@v_a:hs");
    assert.equal(
      held.deviceLists.changed.length + held.deviceLists.left.length,
      MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING,
    );
    assert.deepEqual(held.deviceLists.left, ["@b:hs", "@u0:hs"]);
    assert.equal(held.deviceListsOverflowed, true, "some dropped: every tracked list to be asked for again");
    assert.ok(!held.deviceLists.changed.includes("@x:hs"), "nothing held before its start");
    assert.deepEqual(
      held.txns.map((t) => [t.txnId, t.events.length, t.receipts.length, t.toDevice.length]),
      [
        ["t1", 0, 0, 0],
        ["t2", 0, 0, 0],
        ["t3", 0, 0, 0],
        ["t4", 0, 0, 0],
      ],
      "each transaction of changes recorded as held, a retry's once",
    );
  });

  it("records at most MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING transactions of changes only; their changes still held", () => {
    const s = new StartingUsers();
    s.begin("@v_a:hs");
    for (let i = 0; i < MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING; i++)
      s.hold(`t${i}`, lists([`@u${i % 3}:hs`]));
    s.hold("past", lists(["@past:hs"]));
    s.hold("events", txn([], [event(1)]));
    const held = s.take("@v_a:hs");
    assert.equal(held.txns.length, MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING + 1);
    assert.ok(!held.txns.some((t) => t.txnId === "past"), "past the bound: not recorded");
    assert.equal(held.txns.at(-1)?.txnId, "events", "one with an event kept still is");
    assert.deepEqual(held.deviceLists.changed, ["@u0:hs", "@u1:hs", "@u2:hs", "@past:hs"]);
  });

  it("holds read receipts with their transaction, not typing; at most MAX_RECEIPTS_HELD_WHILE_STARTING", () => {
    const s = new StartingUsers();
    s.begin("@v_a:hs");
    s.hold("t1", ephemeral("!r1:hs", "!r2:hs"));
    s.hold("t1", ephemeral("!r1:hs", "!r2:hs"));
    const rooms = Array.from({ length: MAX_RECEIPTS_HELD_WHILE_STARTING }, (_, i) => `!m${i}:hs`);
    assert.deepEqual(s.hold("t2", ephemeral(...rooms)), [{ userId: "@v_a:hs", ...NONE, receipts: 2 }]);
    const held = s.take("@v_a:hs");
    assert.deepEqual(
      held.txns.map(({ txnId, receipts }) => [txnId, receipts.length, new Set(receipts.map((e) => e.type))]),
      [
        ["t1", 2, new Set(["m.receipt"])],
        ["t2", MAX_RECEIPTS_HELD_WHILE_STARTING - 2, new Set(["m.receipt"])],
      ],
    );
    assert.equal(held.txns[1]?.receipts[0]?.room_id, "!m0:hs", "the first ones");
  });

  it("keeps what was held for a user whose start failed, and goes on holding, until it starts again", () => {
    const s = new StartingUsers();
    s.begin("@v_a:hs");
    s.hold("t1", txn([toDevice("@v_a:hs", 1)], [event(1)]));
    s.hold("t1b", lists(["@b:hs"]));
    s.hold("t1c", ephemeral("!r:hs"));
    assert.deepEqual(s.failed("@v_a:hs"), {
      kept: { toDevice: 1, roomEvents: 1, receipts: 1, deviceListUsers: 1 },
    });
    s.hold("t2", txn([toDevice("@v_a:hs", 2)], [event(2)]));
    s.hold("t2b", lists([], ["@c:hs"]));
    s.begin("@v_a:hs");
    assert.equal(messagesOf(s.held("@v_a:hs")).length, 2, "looked at, not taken");
    s.hold("t3", txn([toDevice("@v_a:hs", 3)]));
    const held = s.take("@v_a:hs");
    assert.deepEqual(
      messagesOf(held).map((m) => m.content.n),
      [1, 2, 3],
    );
    assert.deepEqual(
      held.txns.map((t) => t.txnId),
      ["t1", "t1b", "t1c", "t2", "t2b", "t3"],
    );
    assert.deepEqual(held.deviceLists, { changed: ["@b:hs"], left: ["@c:hs"] });
    assert.deepEqual(s.failed("@v_a:hs"), { kept: NONE }, "started: nothing left");
  });

  it("keeps at most MAX_FAILED_STARTS_HELD failed starts: past it, the first to fail is dropped and counted", () => {
    const s = new StartingUsers();
    const user = (i: number) => `@v_${i}:hs`;
    for (let i = 0; i <= MAX_FAILED_STARTS_HELD; i++) s.begin(user(i));
    s.hold("t1", txn([toDevice(user(0), 1)], [event(1)]));
    s.hold("t1b", lists(["@b:hs", "@c:hs"]));
    s.hold("t1c", ephemeral("!r:hs"));
    for (let i = 0; i < MAX_FAILED_STARTS_HELD; i++) assert.equal(s.failed(user(i)).dropped, undefined);
    // Failing again makes it the last to have failed.
    assert.equal(s.failed(user(0)).dropped, undefined);
    assert.deepEqual(s.failed(user(MAX_FAILED_STARTS_HELD)).dropped, {
      userId: user(1),
      toDevice: 0,
      roomEvents: 1,
      receipts: 1,
      deviceListUsers: 2,
    });
    assert.deepEqual(s.take(user(1)), NOTHING_HELD);
    assert.equal(messagesOf(s.take(user(0))).length, 1);
    // A start under way is never dropped for failed ones.
    s.begin("@v_live:hs");
    for (let i = 0; i < 2 * MAX_FAILED_STARTS_HELD; i++) {
      s.begin(user(100 + i));
      s.failed(user(100 + i));
    }
    s.hold("t2", txn([toDevice("@v_live:hs", 1)]));
    assert.equal(messagesOf(s.take("@v_live:hs")).length, 1);
    assert.equal(s.clear().length, MAX_FAILED_STARTS_HELD, "the others, dropped and counted");
  });
});
