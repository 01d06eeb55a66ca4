// Whatever a server sends to /sync, the client either processes it or rejects it with
// MalformedResponseError: no other exception, and the sync token moves only on success.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import { MalformedResponseError } from "../errors.ts";

const eventish = fc.record(
  {
    event_id: fc.oneof(fc.string(), fc.integer()),
    type: fc.oneof(
      fc.constantFrom(
        "m.room.message",
        "m.room.member",
        "m.room.tombstone",
        "m.room.encrypted",
        "m.room.create",
        "m.typing",
        "m.receipt",
      ),
      fc.string(),
    ),
    sender: fc.oneof(fc.constant("@me:hs"), fc.string()),
    origin_server_ts: fc.oneof(fc.integer(), fc.string()),
    state_key: fc.oneof(fc.constant("@me:hs"), fc.constant(""), fc.string(), fc.integer()),
    content: fc.oneof(
      fc.dictionary(
        fc.constantFrom(
          "membership",
          "body",
          "replacement_room",
          "predecessor",
          "user_ids",
          "algorithm",
          "name",
        ),
        fc.jsonValue(),
      ),
      fc.jsonValue(),
    ),
  },
  { requiredKeys: [] },
);
const events = fc.record(
  { events: fc.oneof(fc.array(fc.oneof(eventish, fc.jsonValue()), { maxLength: 6 }), fc.jsonValue()) },
  { requiredKeys: [] },
);
const roomish = fc.record(
  {
    state: events,
    timeline: fc.record(
      { events: fc.array(eventish, { maxLength: 6 }), limited: fc.boolean(), prev_batch: fc.string() },
      { requiredKeys: [] },
    ),
    ephemeral: events,
    account_data: events,
    invite_state: events,
  },
  { requiredKeys: [] },
);
// Mostly plausible bodies, each field well-formed or not: with every field free, almost every body
// was refused at its top level (no string next_batch, or a non-object device_lists) and the rest of
// the handling (rooms, to-device, account data) was hardly ever reached.
const syncish = fc.oneof(
  { weight: 1, arbitrary: fc.jsonValue() },
  {
    weight: 4,
    arbitrary: fc.record(
      {
        next_batch: fc.oneof(
          { weight: 6, arbitrary: fc.string({ minLength: 1 }) },
          { weight: 1, arbitrary: fc.string() },
          { weight: 1, arbitrary: fc.integer() },
        ),
        rooms: fc.record(
          {
            join: fc.dictionary(fc.string(), fc.oneof(roomish, fc.jsonValue()), { maxKeys: 3 }),
            invite: fc.dictionary(fc.string(), fc.oneof(roomish, fc.jsonValue()), { maxKeys: 2 }),
            leave: fc.dictionary(fc.string(), fc.oneof(roomish, fc.jsonValue()), { maxKeys: 2 }),
          },
          { requiredKeys: [] },
        ),
        account_data: events,
        to_device: events,
        device_lists: fc.oneof(
          {
            weight: 3,
            arbitrary: fc.record({ changed: fc.array(fc.string()), left: fc.array(fc.string()) }),
          },
          { weight: 1, arbitrary: fc.jsonValue() },
        ),
        device_one_time_keys_count: fc.oneof(
          { weight: 3, arbitrary: fc.dictionary(fc.string(), fc.nat()) },
          { weight: 1, arbitrary: fc.jsonValue() },
        ),
      },
      { requiredKeys: ["next_batch"] },
    ),
  },
);

describe("sync handling, property", () => {
  it("processes or rejects with MalformedResponseError, and saves the token only on success", async () => {
    let processed = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(syncish, async (body) => {
        const store = new MemoryClientStore();
        await store.saveSession({
          homeserverUrl: "https://hs",
          userId: "@me:hs",
          deviceId: "D",
          accessToken: "t",
        });
        const client = new MatrixClient({
          homeserverUrl: "https://hs",
          store,
          // Gap filling would call /messages; this property is about /sync bodies alone.
          fillTimelineGaps: false,
          fetch: async () => new Response(JSON.stringify(body), { status: 200 }),
        });
        await client.restore();
        try {
          await client.syncOnce();
          const nb = (body as { next_batch?: unknown }).next_batch;
          assert.equal((await store.loadSync())?.nextBatch, nb);
          processed++;
        } catch (err) {
          assert.ok(err instanceof MalformedResponseError, `unexpected ${String(err)}`);
          assert.equal(await store.loadSync(), undefined);
          refused++;
        }
      }),
      { numRuns: 300, seed: 0x5c0e },
    );
    // Both halves of the property were exercised (the generator cannot drift into refusals only).
    assert.ok(processed >= 60 && refused >= 60, `${processed} processed, ${refused} refused`);
  });
});
