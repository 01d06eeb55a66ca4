// Events from the network nest at most MAX_EVENT_DEPTH levels: deeper ones are dropped where
// malformed events are, by the schemas and by the fast sync path alike.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseTransaction } from "../appservice/transaction.ts";
import {
  basicEventSchema,
  clientEventSchema,
  stateEventSchema,
  strippedStateEventSchema,
  toDeviceEventSchema,
} from "./events.ts";
import { MAX_EVENT_DEPTH, storableWithin } from "./json.ts";
import { syncResponseSchema } from "./sync.ts";
import { parseCommonSyncResponse } from "./sync-fast.ts";
import { countEvents, depthOf, eventsWithContent, syncWithContent } from "./test-support/event-places.ts";

/** An object nesting `levels` levels: `{a: {a: … {}}}`. */
function chain(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

/** A content that makes the event holding it (at level 1) nest `levels` levels. */
const contentFor = (levels: number) => JSON.stringify(chain(levels - 1));

describe("event nesting", () => {
  it("storableWithin agrees with the depth of any JSON value (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 8 }), (v, levels) => {
        assert.equal(storableWithin(v, levels), depthOf(v) <= levels);
      }),
    );
    assert.equal(storableWithin(chain(100_000), MAX_EVENT_DEPTH), false, "stops at the bound");
  });

  it("every event schema keeps an event of MAX_EVENT_DEPTH levels and drops a deeper one", () => {
    for (const [levels, kept] of [
      [MAX_EVENT_DEPTH, true],
      [MAX_EVENT_DEPTH + 1, false],
    ] as const) {
      const e = eventsWithContent(contentFor(levels));
      for (const [schema, text] of [
        [stateEventSchema, e.state],
        [clientEventSchema, e.timeline],
        [strippedStateEventSchema, e.stripped],
        [basicEventSchema, e.basic],
        [toDeviceEventSchema, e.toDevice],
      ] as const) {
        assert.equal(schema.safeParse(JSON.parse(text)).success, kept, `${levels}: ${text.slice(0, 40)}`);
      }
    }
  });

  it("a sync response keeps events of MAX_EVENT_DEPTH levels and drops deeper ones, on both paths", () => {
    const within = JSON.parse(syncWithContent(contentFor(MAX_EVENT_DEPTH)));
    const fast = parseCommonSyncResponse(within);
    assert.ok(fast, "the fast path takes a response within the bound");
    assert.deepEqual(fast, syncResponseSchema.parse(within));
    assert.equal(countEvents(fast), 7);

    const deep = JSON.parse(syncWithContent(contentFor(MAX_EVENT_DEPTH + 1)));
    assert.equal(parseCommonSyncResponse(deep), undefined, "the fast path leaves it to the schema");
    const parsed = syncResponseSchema.parse(deep);
    assert.equal(countEvents(parsed), 0);
    assert.equal(parsed.next_batch, "s1");
    assert.ok(parsed.rooms?.join?.["!r:x"], "the room itself stays");
  });

  it("an appservice transaction drops its too deep events and keeps the rest", () => {
    const deep = JSON.parse(contentFor(MAX_EVENT_DEPTH + 1)) as Record<string, unknown>;
    const timeline = JSON.parse(eventsWithContent("{}").timeline) as Record<string, unknown>;
    const txn = parseTransaction({
      events: [{ ...timeline, content: deep }, timeline],
      ephemeral: [{ type: "m.typing", room_id: "!r:x", content: deep }],
      "de.sorunome.msc2409.to_device": [
        { type: "x", sender: "@a:x", to_user_id: "@b:x", to_device_id: "B", content: deep },
      ],
    });
    assert.equal(txn.events.length, 1);
    assert.equal(txn.ephemeral.length, 0);
    assert.equal(txn.toDevice.length, 0);
  });
});
