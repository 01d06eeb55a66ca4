import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { syncResponseSchema } from "./sync.ts";
import { parseCommonSyncResponse } from "./sync-fast.ts";

const str = fc.string({ maxLength: 6 });
const id = fc.string({ minLength: 1, maxLength: 6 });
const content = fc.dictionary(str, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
const unsigned = fc.record(
  {
    age: fc.integer(),
    transaction_id: str,
    prev_content: content,
    redacted_because: content,
    membership: str,
  },
  { requiredKeys: [] },
);
const clientEvent = fc.record(
  {
    event_id: id,
    type: id,
    sender: id,
    origin_server_ts: fc.integer(),
    content,
    state_key: str,
    room_id: str,
    redacts: str,
    unsigned,
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: ["event_id", "type", "sender", "origin_server_ts", "content"] },
);
const stateEvent = fc.record({
  event_id: id,
  type: id,
  sender: id,
  origin_server_ts: fc.integer(),
  content,
  state_key: str,
});
const basicEvent = fc.record({ type: id, content });
const stripped = fc.record({ type: id, state_key: str, sender: id, content });
const toDevice = fc.record({ type: id, sender: id, content });
const events = <T>(e: fc.Arbitrary<T>) =>
  fc.record({ events: fc.array(e, { maxLength: 3 }) }, { requiredKeys: [] });
const count = fc.nat();
const timeline = fc.record(
  { events: fc.array(clientEvent, { maxLength: 3 }), limited: fc.boolean(), prev_batch: str },
  { requiredKeys: [] },
);
const joined = fc.record(
  {
    summary: fc.record(
      {
        "m.heroes": fc.array(str, { maxLength: 2 }),
        "m.joined_member_count": count,
        "m.invited_member_count": count,
      },
      { requiredKeys: [] },
    ),
    state: events(stateEvent),
    timeline,
    ephemeral: events(basicEvent),
    account_data: events(basicEvent),
    unread_notifications: fc.record(
      { highlight_count: count, notification_count: count },
      { requiredKeys: [] },
    ),
    unread_thread_notifications: fc.dictionary(
      id,
      fc.record({ highlight_count: count, notification_count: count }, { requiredKeys: [] }),
      { maxKeys: 2 },
    ),
  },
  { requiredKeys: [] },
);
const rooms = <T>(room: fc.Arbitrary<T>) => fc.dictionary(id, room, { maxKeys: 2 });
/** Well-formed responses: the fast path must take every one. */
const response = fc.record(
  {
    next_batch: id,
    rooms: fc.record(
      {
        join: rooms(joined),
        invite: rooms(fc.record({ invite_state: events(stripped) }, { requiredKeys: [] })),
        leave: rooms(
          fc.record(
            { state: events(stateEvent), timeline, account_data: events(basicEvent) },
            { requiredKeys: [] },
          ),
        ),
        knock: rooms(fc.record({ knock_state: events(stripped) }, { requiredKeys: [] })),
      },
      { requiredKeys: [] },
    ),
    presence: events(basicEvent),
    account_data: events(basicEvent),
    to_device: events(toDevice),
    device_lists: fc.record({ changed: fc.array(str), left: fc.array(str) }, { requiredKeys: [] }),
    device_one_time_keys_count: fc.dictionary(id, count, { maxKeys: 2 }),
    device_unused_fallback_key_types: fc.array(str, { maxLength: 2 }),
    unknown_field: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: ["next_batch"] },
);

/** Any value the JSON could hold where a valid one was, including an own `__proto__` key. */
const bad = fc.oneof(
  fc.jsonValue({ maxDepth: 1 }),
  fc.constantFrom("", -1, 1.5, 2 ** 60, null, [], {}),
  fc.constant("__proto__"),
);

/** Replaces (or adds) the value at the `pick`th object or array met in `v`, depth first. */
function mutate(v: unknown, pick: number, key: string, value: unknown): unknown {
  let n = 0;
  const walk = (x: unknown): void => {
    if (typeof x !== "object" || x === null) return;
    if (n++ === pick) {
      const keys = Object.keys(x);
      const k = keys.length > 0 && key.length % 3 !== 0 ? (keys[key.length % keys.length] as string) : key;
      if (value === "__proto__") {
        Object.defineProperty(x, "__proto__", {
          value: {},
          enumerable: true,
          configurable: true,
          writable: true,
        });
      } else {
        (x as Record<string, unknown>)[k] = value;
      }
      return;
    }
    for (const child of Object.values(x)) walk(child);
  };
  walk(v);
  return v;
}

/** What the sync loop hands either parser: the body as `JSON.parse` returns it. */
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

function agrees(input: unknown): boolean {
  const fast = parseCommonSyncResponse(asJson(input));
  if (fast === undefined) return false;
  const slow = syncResponseSchema.safeParse(asJson(input));
  assert.ok(slow.success, "the fast path accepted what the schema refuses");
  assert.deepStrictEqual(fast, slow.data);
  return true;
}

describe("parseCommonSyncResponse", () => {
  it("gives the schema's result for every well-formed response", () => {
    fc.assert(
      fc.property(response, (res) => {
        assert.ok(agrees(res), "a well-formed response fell back to the schema");
      }),
      { numRuns: 300 },
    );
  });

  it("gives the schema's result or leaves the response to it, whatever is wrong in it", () => {
    fc.assert(
      fc.property(
        response,
        fc.nat({ max: 40 }),
        fc.string({ maxLength: 4 }),
        bad,
        (res, pick, key, value) => {
          agrees(mutate(asJson(res), pick, key, value));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("leaves a response with a malformed event to the schema, which drops that event", () => {
    const res = {
      next_batch: "s1",
      rooms: {
        join: {
          "!r:hs": {
            timeline: {
              events: [
                { event_id: "$1", type: "m.room.message", sender: "@a:hs", origin_server_ts: 1, content: {} },
                {
                  event_id: "$2",
                  type: "m.room.message",
                  sender: "@a:hs",
                  origin_server_ts: 1,
                  content: "x",
                },
              ],
            },
          },
        },
      },
    };
    assert.equal(parseCommonSyncResponse(res), undefined);
    assert.equal(syncResponseSchema.parse(res).rooms?.join?.["!r:hs"]?.timeline?.events?.length, 1);
  });
});
