import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SyncResponse } from "../../wire/index.ts";
import { MAX_ECHO_EVENTS, rememberTimeline, withoutEchoes } from "./echo.ts";

const event = (id: string) => ({
  event_id: id,
  type: "m.room.message",
  sender: "@a:x",
  origin_server_ts: 1,
  content: { body: id },
});

function response(join: string[], leave: string[] = []): SyncResponse {
  return {
    next_batch: "s",
    rooms: {
      join: { "!j:x": { timeline: { events: join.map(event) } } },
      leave: { "!l:x": { timeline: { events: leave.map(event) } } },
    },
  } as SyncResponse;
}

describe("sync echoes (a shared store's second syncing process)", () => {
  it("drops the timeline events already shown, in joined and left rooms, leaving the response intact", () => {
    const echo = new Set<string>();
    rememberTimeline(echo, response(["$1", "$2"], ["$3"]));
    const next = response(["$2", "$4"], ["$3", "$5"]);
    const fresh = withoutEchoes(next, echo);
    assert.deepEqual(
      fresh.rooms?.join?.["!j:x"]?.timeline?.events?.map((e) => e.event_id),
      ["$4"],
    );
    assert.deepEqual(
      fresh.rooms?.leave?.["!l:x"]?.timeline?.events?.map((e) => e.event_id),
      ["$5"],
    );
    assert.equal(next.rooms?.join?.["!j:x"]?.timeline?.events?.length, 2, "the input is not changed");
    assert.equal(withoutEchoes(next, new Set()), next, "nothing to drop: the same object");
  });

  it("remembers at most MAX_ECHO_EVENTS, the newest", () => {
    const echo = new Set<string>();
    const ids = Array.from({ length: MAX_ECHO_EVENTS + 10 }, (_, i) => `$${i}`);
    rememberTimeline(echo, response(ids));
    assert.equal(echo.size, MAX_ECHO_EVENTS);
    assert.equal(echo.has("$0"), false);
    assert.equal(echo.has(`$${MAX_ECHO_EVENTS + 9}`), true);
  });
});
