// A number past a double's range (`1e400`) parses as Infinity, which `JSON.stringify` writes as
// null: a member's state event holding one (a power level, say) read one way until the client
// restarted and another after. Events holding one are dropped where malformed events are.
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
import { storableWithin } from "./json.ts";
import { syncResponseSchema } from "./sync.ts";
import { parseCommonSyncResponse } from "./sync-fast.ts";
import { countEvents, depthOf, eventsWithContent, syncWithContent } from "./test-support/event-places.ts";

/** Whether `v` holds a number that is not finite, by a plain walk. */
function holdsNonFinite(v: unknown): boolean {
  if (typeof v === "number") return !Number.isFinite(v);
  if (typeof v !== "object" || v === null) return false;
  return (Array.isArray(v) ? v : Object.values(v)).some(holdsNonFinite);
}

/** A JSON value with numbers as JSON.parse may give them, Infinity included. */
const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(0, -0, 1.5, 1e308, Number.MAX_SAFE_INTEGER + 2, Infinity, -Infinity, "x", null, true),
    fc.array(tie("v"), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 2 }), tie("v"), { maxKeys: 3 }),
  ),
})).v;

const FIELDS = { event_id: "$e", type: "m.room.power_levels", sender: "@a:x", origin_server_ts: 1 };

/** Events of each kind whose content holds `number` (as JSON text, so 1e400 stays in). */
const numberContent = (number: string) => `{"users":{"@m:x":${number}},"deep":[[{"n":${number}}]]}`;
const eventsWith = (number: string) => eventsWithContent(numberContent(number));
const syncText = (number: string) => syncWithContent(numberContent(number));

describe("numbers past a double's range in events", () => {
  it("storableWithin: the depth, and no number that is not finite (property)", () => {
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 5 }), (v, levels) => {
        assert.equal(storableWithin(v, levels), depthOf(v) <= levels && !holdsNonFinite(v));
      }),
      { numRuns: 500 },
    );
  });

  it("every event schema drops an event holding 1e400 or -1e400 and keeps 1e308, -0 and 2^53+1", () => {
    for (const n of ["1e400", "-1e400"]) {
      const e = eventsWith(n);
      assert.ok(!stateEventSchema.safeParse(JSON.parse(e.state)).success, n);
      assert.ok(!clientEventSchema.safeParse(JSON.parse(e.timeline)).success, n);
      assert.ok(!strippedStateEventSchema.safeParse(JSON.parse(e.stripped)).success, n);
      assert.ok(!basicEventSchema.safeParse(JSON.parse(e.basic)).success, n);
      assert.ok(!toDeviceEventSchema.safeParse(JSON.parse(e.toDevice)).success, n);
    }
    for (const n of ["1e308", "-0", "9007199254740993", "1e-400"]) {
      const e = eventsWith(n);
      assert.ok(stateEventSchema.safeParse(JSON.parse(e.state)).success, n);
      assert.ok(toDeviceEventSchema.safeParse(JSON.parse(e.toDevice)).success, n);
    }
  });

  it("a sync response drops such events and keeps the rest, on both paths", () => {
    const fine = JSON.parse(syncText("1e308"));
    const fast = parseCommonSyncResponse(fine);
    assert.ok(fast, "the fast path takes finite numbers");
    assert.deepEqual(fast, syncResponseSchema.parse(fine));
    assert.equal(countEvents(fast), 7);

    const infinite = JSON.parse(syncText("1e400"));
    assert.equal(parseCommonSyncResponse(infinite), undefined, "the fast path leaves it to the schema");
    const parsed = syncResponseSchema.parse(infinite);
    assert.equal(countEvents(parsed), 0);
    assert.ok(parsed.rooms?.join?.["!r:x"], "the room itself stays");
  });

  it("an appservice transaction drops such events", () => {
    const e = eventsWith("1e400");
    const ok = JSON.stringify({ ...FIELDS, content: {} });
    const txn = parseTransaction(JSON.parse(`{"events":[${e.timeline},${ok}]}`));
    assert.equal(txn.events.length, 1);
  });
});
