import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Membership, syncResponseSchema } from "../wire/index.ts";
import { parseTransaction } from "./transaction.ts";
import { type KnownKeyCounts, userSyncFor } from "./user-sync.ts";

const me = "@br_bob:x";
const ev = (id: string, type: string, room: string, extra: Record<string, unknown> = {}) => ({
  event_id: id,
  type,
  sender: "@alice:x",
  origin_server_ts: 1,
  room_id: room,
  content: {},
  ...extra,
});
const view = (rooms: Record<string, Membership>) => ({
  userId: me,
  deviceId: "DEV",
  membership: (roomId: string) => rooms[roomId],
});

describe("a virtual user's share of a transaction", () => {
  it("carries the events of its rooms only, and its own invites with their stripped state", () => {
    const txn = parseTransaction({
      events: [
        ev("$1", "m.room.message", "!in:x"),
        ev("$2", "m.room.message", "!other:x"),
        ev("$3", "m.room.member", "!new:x", {
          state_key: me,
          content: { membership: "invite" },
          unsigned: {
            invite_room_state: [
              { type: "m.room.encryption", state_key: "", sender: "@alice:x", content: {} },
            ],
          },
        }),
      ],
    });
    const share = userSyncFor(view({ "!in:x": "join" }), txn, "b1", {});
    assert.ok(share);
    const res = syncResponseSchema.parse(share.response);
    assert.deepEqual(Object.keys(res.rooms?.join ?? {}), ["!in:x"]);
    assert.equal(res.rooms?.join?.["!in:x"]?.timeline?.events?.[0]?.event_id, "$1");
    const invite = res.rooms?.invite?.["!new:x"]?.invite_state?.events ?? [];
    assert.deepEqual(
      invite.map((e) => e.type),
      ["m.room.encryption", "m.room.member"],
    );
    assert.deepEqual(share.joined, []);
  });

  it("follows its own membership within the transaction: a join brings the room in, a leave moves it out", () => {
    const txn = parseTransaction({
      events: [
        ev("$j", "m.room.member", "!r:x", { sender: me, state_key: me, content: { membership: "join" } }),
        ev("$m", "m.room.message", "!r:x"),
        ev("$l", "m.room.member", "!gone:x", { sender: me, state_key: me, content: { membership: "leave" } }),
        ev("$after", "m.room.message", "!gone:x"),
      ],
    });
    const share = userSyncFor(view({ "!gone:x": "join" }), txn, "b2", {})!;
    const res = syncResponseSchema.parse(share.response);
    assert.deepEqual(share.joined, ["!r:x"]);
    assert.deepEqual(
      res.rooms?.join?.["!r:x"]?.timeline?.events?.map((e) => e.event_id),
      ["$j", "$m"],
    );
    assert.deepEqual(
      res.rooms?.leave?.["!gone:x"]?.timeline?.events?.map((e) => e.event_id),
      ["$l"],
    );
  });

  it("takes only the to-device messages addressed to its device, without the routing fields", () => {
    const txn = parseTransaction({
      events: [],
      "de.sorunome.msc2409.to_device": [
        {
          type: "m.room.encrypted",
          sender: "@alice:x",
          content: { n: 1 },
          to_user_id: me,
          to_device_id: "DEV",
        },
        {
          type: "m.room.encrypted",
          sender: "@alice:x",
          content: { n: 2 },
          to_user_id: me,
          to_device_id: "OTHER",
        },
        {
          type: "m.room.encrypted",
          sender: "@alice:x",
          content: { n: 3 },
          to_user_id: "@br_carol:x",
          to_device_id: "DEV",
        },
      ],
    });
    const res = syncResponseSchema.parse(userSyncFor(view({}), txn, "b3", {})!.response);
    assert.deepEqual(res.to_device?.events, [
      { type: "m.room.encrypted", sender: "@alice:x", content: { n: 1 } },
    ]);
  });

  it("remembers its key counts, which MSC3202 leaves out while unchanged", () => {
    const known: KnownKeyCounts = {};
    const withCounts = parseTransaction({
      events: [],
      "org.matrix.msc3202.device_one_time_keys_count": { [me]: { DEV: { signed_curve25519: 42 } } },
      "org.matrix.msc3202.device_unused_fallback_key_types": { [me]: { DEV: [] } },
    });
    const first = syncResponseSchema.parse(userSyncFor(view({}), withCounts, "b4", known)!.response);
    assert.deepEqual(first.device_one_time_keys_count, { signed_curve25519: 42 });
    const later = parseTransaction({
      events: [],
      "org.matrix.msc3202.device_lists": { changed: ["@alice:x"] },
    });
    const second = syncResponseSchema.parse(userSyncFor(view({}), later, "b5", known)!.response);
    assert.deepEqual(second.device_one_time_keys_count, { signed_curve25519: 42 });
    assert.deepEqual(second.device_unused_fallback_key_types, []);
    assert.deepEqual(second.device_lists, { changed: ["@alice:x"], left: [] });
  });

  it("is nothing when nothing concerns the user", () => {
    const txn = parseTransaction({ events: [ev("$x", "m.room.message", "!elsewhere:x")] });
    assert.equal(userSyncFor(view({}), txn, "b6", {}), undefined);
  });

  it("takes rooms named like Object.prototype's members, and drops room IDs no store or URL can carry", () => {
    const own = (id: string, room: string, membership: string) =>
      ev(id, "m.room.member", room, { sender: me, state_key: me, content: { membership } });
    const txn = parseTransaction({
      events: [
        own("$1", "toString", "join"),
        ev("$2", "m.room.message", "toString"),
        own("$3", "__proto__", "join"),
        own("$4", "constructor", "invite"),
        own("$5", "hasOwnProperty", "leave"),
        // A lone surrogate: its state could not be fetched (no URL carries it), failing the share.
        own("$6", "!r\ud800:x", "join"),
        own("$7", "", "join"),
      ],
      ephemeral: [{ type: "m.typing", room_id: "toString", content: { user_ids: [] } }],
    });
    const share = userSyncFor(view({}), txn, "b7", {});
    assert.ok(share);
    assert.deepEqual(share.joined, ["toString", "__proto__"]);
    const res = syncResponseSchema.parse(share.response);
    const room: string = "toString";
    assert.deepEqual(
      res.rooms?.join?.[room]?.timeline?.events?.map((e) => e.event_id),
      ["$1", "$2"],
    );
    assert.equal(res.rooms?.join?.[room]?.ephemeral?.events?.length, 1);
    assert.ok(Object.hasOwn(res.rooms?.invite ?? {}, "constructor"));
    assert.ok(Object.hasOwn(res.rooms?.leave ?? {}, "hasOwnProperty"));
  });
  it("shows it its own private read receipts only, as a sync does, and everyone's public ones", () => {
    const other = "@br_carol:x";
    const receipt = (content: Record<string, unknown>) => ({ type: "m.receipt", room_id: "!in:x", content });
    const txn = parseTransaction({
      events: [],
      ephemeral: [
        receipt({
          $a: {
            "m.read": { "@alice:x": { ts: 1 } },
            "m.read.private": { [me]: { ts: 2 }, [other]: { ts: 3 } },
          },
          $b: { "m.read.private": { [other]: { ts: 4 } } },
        }),
        // Nothing left for this user: the event is left out.
        receipt({ $c: { "m.read.private": { [other]: { ts: 5 } } } }),
      ],
    });
    const share = userSyncFor(view({ "!in:x": "join" }), txn, "b1", {});
    assert.ok(share);
    const res = syncResponseSchema.parse(share.response);
    const events = res.rooms?.join?.["!in:x"]?.ephemeral?.events ?? [];
    assert.deepEqual(JSON.parse(JSON.stringify(events)), [
      {
        type: "m.receipt",
        content: { $a: { "m.read": { "@alice:x": { ts: 1 } }, "m.read.private": { [me]: { ts: 2 } } } },
      },
    ]);
  });
});
