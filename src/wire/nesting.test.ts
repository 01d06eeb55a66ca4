// Events from the network nest at most MAX_EVENT_DEPTH levels: deeper ones are dropped where
// malformed events are, by the schemas and by the fast sync path alike.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseTransaction } from "../appservice/transaction.ts";
import {
  basicEventSchema,
  clientEventSchema,
  strippedStateEventSchema,
  toDeviceEventSchema,
} from "./events.ts";
import { MAX_EVENT_DEPTH, nestsWithin } from "./json.ts";
import { syncResponseSchema } from "./sync.ts";
import { parseCommonSyncResponse } from "./sync-fast.ts";

/** Levels of objects and arrays in `v`, by a plain walk. */
function depth(v: unknown): number {
  if (typeof v !== "object" || v === null) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depth));
}

/** An object nesting `levels` levels: `{a: {a: … {}}}`. */
function chain(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

/** An event with `fields`, whose content nests so that the whole event nests `levels` levels. */
function eventNesting(levels: number, fields: Record<string, unknown>): Record<string, unknown> {
  return { ...fields, content: chain(levels - 1) };
}

const timelineFields = { event_id: "$e", type: "m.room.message", sender: "@a:x", origin_server_ts: 1 };
const stateFields = { ...timelineFields, type: "m.room.member", state_key: "@a:x" };

/** A sync response with one event of `levels` levels in each place events come. */
function syncWith(levels: number) {
  return {
    next_batch: "s1",
    account_data: { events: [eventNesting(levels, { type: "x.a" })] },
    to_device: { events: [eventNesting(levels, { type: "x.t", sender: "@a:x" })] },
    rooms: {
      join: {
        "!r:x": {
          state: { events: [eventNesting(levels, stateFields)] },
          timeline: { events: [eventNesting(levels, timelineFields)] },
          ephemeral: { events: [eventNesting(levels, { type: "m.typing" })] },
          account_data: { events: [eventNesting(levels, { type: "x.r" })] },
        },
      },
      invite: {
        "!i:x": {
          invite_state: { events: [eventNesting(levels, { type: "x.s", state_key: "", sender: "@a:x" })] },
        },
      },
    },
  };
}

function countEvents(s: ReturnType<typeof syncResponseSchema.parse>): number {
  const join = s.rooms?.join?.["!r:x"];
  return [
    s.account_data?.events,
    s.to_device?.events,
    join?.state?.events,
    join?.timeline?.events,
    join?.ephemeral?.events,
    join?.account_data?.events,
    s.rooms?.invite?.["!i:x"]?.invite_state?.events,
  ].reduce((n, events) => n + (events?.length ?? 0), 0);
}

describe("event nesting", () => {
  it("nestsWithin agrees with the depth of any JSON value (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 8 }), (v, levels) => {
        assert.equal(nestsWithin(v, levels), depth(v) <= levels);
      }),
    );
    assert.equal(nestsWithin(chain(100_000), MAX_EVENT_DEPTH), false, "stops at the bound");
  });

  it("every event schema keeps an event of MAX_EVENT_DEPTH levels and drops a deeper one", () => {
    for (const [schema, fields] of [
      [clientEventSchema, timelineFields],
      [strippedStateEventSchema, { type: "x", state_key: "", sender: "@a:x" }],
      [basicEventSchema, { type: "x" }],
      [toDeviceEventSchema, { type: "x", sender: "@a:x" }],
    ] as const) {
      assert.ok(schema.safeParse(eventNesting(MAX_EVENT_DEPTH, fields)).success);
      assert.ok(!schema.safeParse(eventNesting(MAX_EVENT_DEPTH + 1, fields)).success);
    }
  });

  it("a sync response keeps events of MAX_EVENT_DEPTH levels and drops deeper ones, on both paths", () => {
    const within = syncWith(MAX_EVENT_DEPTH);
    const fast = parseCommonSyncResponse(within);
    assert.ok(fast, "the fast path takes a response within the bound");
    assert.deepEqual(fast, syncResponseSchema.parse(within));
    assert.equal(countEvents(fast), 7);

    const deep = syncWith(MAX_EVENT_DEPTH + 1);
    assert.equal(parseCommonSyncResponse(deep), undefined, "the fast path leaves it to the schema");
    const parsed = syncResponseSchema.parse(deep);
    assert.equal(countEvents(parsed), 0);
    assert.equal(parsed.next_batch, "s1");
    assert.ok(parsed.rooms?.join?.["!r:x"], "the room itself stays");
  });

  it("an appservice transaction drops its too deep events and keeps the rest", () => {
    const txn = parseTransaction({
      events: [eventNesting(MAX_EVENT_DEPTH + 1, timelineFields), eventNesting(3, timelineFields)],
      ephemeral: [eventNesting(MAX_EVENT_DEPTH + 1, { type: "m.typing", room_id: "!r:x" })],
      "de.sorunome.msc2409.to_device": [
        eventNesting(MAX_EVENT_DEPTH + 1, {
          type: "x",
          sender: "@a:x",
          to_user_id: "@b:x",
          to_device_id: "B",
        }),
      ],
    });
    assert.equal(txn.events.length, 1);
    assert.equal(txn.ephemeral.length, 0);
    assert.equal(txn.toDevice.length, 0);
  });
});
