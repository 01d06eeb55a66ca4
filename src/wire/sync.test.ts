import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_IDENTIFIER_LENGTH } from "./json.ts";
import { parseMxcUri } from "./media.ts";
import { syncResponseSchema } from "./sync.ts";
import { parseCommonSyncResponse } from "./sync-fast.ts";

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
    // Saved and sent back after a restart; SQLite would give back U+FFFD for the lone surrogate.
    const lone = JSON.parse('{"next_batch":"s1\\ud800"}');
    assert.equal(syncResponseSchema.safeParse(lone).success, false);
    assert.equal(parseCommonSyncResponse(lone), undefined);
    assert.equal(syncResponseSchema.safeParse({ next_batch: "s1\u{1F600}" }).success, true, "a pair is fine");
  });

  it("drops rooms whose ID is empty, overlong or ill-formed, in every section, on both paths", () => {
    const ok = `!${"a".repeat(MAX_IDENTIFIER_LENGTH - 4)}:hs`;
    // Lone surrogates (high, low, reversed pair): each would be saved under U+FFFD, as one room.
    const bad = [
      "",
      "!r\\ud800:hs",
      "!r\\udc00:hs",
      "!r\\udc00\\ud800:hs",
      `!${"a".repeat(MAX_IDENTIFIER_LENGTH)}:hs`,
    ];
    const rooms = (ids: string[]) => `{${ids.map((id) => `"${id}":{}`).join(",")}}`;
    const all = rooms([...bad, ok, "!r\u{1F600}:hs"]);
    const res = JSON.parse(
      `{"next_batch":"s1","rooms":{"join":${all},"invite":${all},"leave":${all},"knock":${all}}}`,
    );
    assert.equal(parseCommonSyncResponse(res), undefined, "left to the schema");
    const parsed = syncResponseSchema.parse(res);
    for (const section of ["join", "invite", "leave", "knock"] as const) {
      assert.deepEqual(Object.keys(parsed.rooms?.[section] ?? {}), [ok, "!r\u{1F600}:hs"], section);
    }
    const fine = JSON.parse(`{"next_batch":"s1","rooms":{"join":${rooms([ok])}}}`);
    assert.deepEqual(parseCommonSyncResponse(fine), syncResponseSchema.parse(fine));
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
