import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMxcUri } from "./media.ts";
import { syncResponseSchema } from "./sync.ts";

describe("sync response schema", () => {
  it("drops malformed events and rooms but keeps the rest", () => {
    const parsed = syncResponseSchema.parse({
      next_batch: "s1",
      rooms: {
        join: {
          "!ok:hs": {
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
                null,
              ],
            },
            state: {
              events: [
                { event_id: "$s", type: "m.room.name", sender: "@a:hs", origin_server_ts: 1, content: {} },
              ],
            },
          },
          "!bad:hs": { timeline: "nope" },
        },
      },
      to_device: { events: [{ type: "m.x", sender: "@a:hs", content: {} }, { type: 5 }] },
    });
    assert.deepEqual(Object.keys(parsed.rooms?.join ?? {}), ["!ok:hs"]);
    assert.deepEqual(
      parsed.rooms?.join?.["!ok:hs"]?.timeline?.events?.map((e) => e.event_id),
      ["$1"],
    );
    // A state event without state_key is not state.
    assert.deepEqual(parsed.rooms?.join?.["!ok:hs"]?.state?.events, []);
    assert.equal(parsed.to_device?.events?.length, 1);
  });

  it("rejects a response without a usable next_batch", () => {
    assert.equal(syncResponseSchema.safeParse({}).success, false);
    assert.equal(syncResponseSchema.safeParse({ next_batch: "" }).success, false);
    assert.equal(syncResponseSchema.safeParse({ next_batch: 5 }).success, false);
  });

  it("parses mxc URIs strictly", () => {
    assert.deepEqual(parseMxcUri("mxc://example.org:8448/abc_D-1"), {
      serverName: "example.org:8448",
      mediaId: "abc_D-1",
    });
    assert.equal(parseMxcUri("mxc://example.org/a/b"), undefined);
    assert.equal(parseMxcUri("mxc://example.org/../x"), undefined);
  });
});
