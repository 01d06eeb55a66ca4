// `history` walks `/messages` backwards page by page. A server whose `end` token points back to a
// page already read (the same token again, or a cycle of two) made the walk repeat for ever.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { restoredMemoryClient } from "../test-support/scripted-sync.ts";
import { MAX_EMPTY_HISTORY_PAGES } from "./api.ts";

const event = (id: string) => ({
  event_id: id,
  type: "m.room.message",
  sender: "@a:hs",
  origin_server_ts: 1,
  content: { msgtype: "m.text", body: id },
});

/** `/messages` answers by `from` token: the page's events and its `end`. */
async function walk(pages: Record<string, { events: string[]; end?: string }>): Promise<string[]> {
  const client = await restoredMemoryClient({
    fetch: async (url) => {
      const from = new URL(url).searchParams.get("from") ?? "";
      const page = pages[from];
      assert.ok(page, `no page at ${JSON.stringify(from)}`);
      return Response.json({ start: from, chunk: page.events.map(event), end: page.end });
    },
  });
  const seen: string[] = [];
  for await (const e of client.history("!r:hs", { pageSize: 2 })) {
    seen.push(e.eventId);
    if (seen.length > 20) break; // the walk did not end
  }
  return seen;
}

describe("history", () => {
  it("ends at a page without a further token", async () => {
    const seen = await walk({ "": { events: ["$1", "$2"], end: "t1" }, t1: { events: ["$3"] } });
    assert.deepEqual(seen, ["$1", "$2", "$3"]);
  });

  it("ends when the server gives back the token it was asked with", async () => {
    const seen = await walk({ "": { events: ["$1"], end: "t1" }, t1: { events: ["$2"], end: "t1" } });
    assert.deepEqual(seen, ["$1", "$2"]);
  });

  it("ends when the tokens go round in a cycle", async () => {
    const seen = await walk({
      "": { events: ["$1"], end: "t1" },
      t1: { events: ["$2"], end: "t2" },
      t2: { events: ["$3"], end: "t1" },
    });
    assert.deepEqual(seen, ["$1", "$2", "$3"]);
  });

  it("goes on past a page the server left empty (events we may not see) while it gives a token", async () => {
    const seen = await walk({
      "": { events: ["$1"], end: "t1" },
      t1: { events: [], end: "t2" },
      t2: { events: ["$2"] },
    });
    assert.deepEqual(seen, ["$1", "$2"]);
  });

  it(`ends after MAX_EMPTY_HISTORY_PAGES (${MAX_EMPTY_HISTORY_PAGES}) empty pages in a row`, async () => {
    let requests = 0;
    const client = await restoredMemoryClient({
      // A fresh token with every empty page, for ever.
      fetch: async () => Response.json({ start: "x", chunk: [], end: `t${++requests}` }),
    });
    const seen: string[] = [];
    for await (const e of client.history("!r:hs")) seen.push(e.eventId);
    assert.deepEqual(seen, []);
    assert.equal(requests, MAX_EMPTY_HISTORY_PAGES);
  });
});
