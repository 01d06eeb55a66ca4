import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryClientStore } from "../client-store/index.ts";
import { INSTANT_CLOCK, restoredMemoryClient, textMessage } from "../test-support/scripted-sync.ts";
import { MAX_GAP_FILL_PAGES } from "./runner.ts";

describe("limited timelines", () => {
  it("fetches the skipped events page by page between the old token and prev_batch, oldest first", async () => {
    const messagesQueries: Record<string, string | null>[] = [];
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      const json = (b: unknown) => new Response(JSON.stringify(b), { status: 200 });
      if (u.pathname.endsWith("/sync")) {
        return json({
          next_batch: "s2",
          rooms: {
            join: {
              "!r:hs": {
                timeline: { events: [textMessage(7), textMessage(8)], limited: true, prev_batch: "p6" },
              },
            },
          },
        });
      }
      if (u.pathname === "/_matrix/client/v3/rooms/!r%3Ahs/messages") {
        const q = Object.fromEntries(["dir", "from", "to"].map((k) => [k, u.searchParams.get(k)]));
        messagesQueries.push(q);
        // Newest first, as /messages with dir=b returns them; two pages.
        if (q.from === "p6") return json({ start: "p6", end: "p4", chunk: [textMessage(6), textMessage(5)] });
        if (q.from === "p4") return json({ start: "p4", chunk: [textMessage(4)] });
      }
      return new Response(JSON.stringify({ errcode: "M_UNRECOGNIZED" }), { status: 404 });
    };
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    const seen: string[] = [];
    client.on("room.event", (_r, ev, meta) => void seen.push(`${ev.content.body}:${meta.source}`));
    await client.syncOnce();
    assert.deepEqual(seen, ["m4:gap", "m5:gap", "m6:gap", "m7:sync", "m8:sync"]);
    assert.deepEqual(messagesQueries, [
      { dir: "b", from: "p6", to: "s1" },
      { dir: "b", from: "p4", to: "s1" },
    ]);
  });

  it("leaves gaps alone when filling is off, and on the first sync", async () => {
    let messagesCalls = 0;
    const fetch = async (url: string): Promise<Response> => {
      if (url.includes("/messages")) messagesCalls++;
      return new Response(
        JSON.stringify({
          next_batch: "s2",
          rooms: {
            join: { "!r:hs": { timeline: { events: [textMessage(7)], limited: true, prev_batch: "p6" } } },
          },
        }),
        { status: 200 },
      );
    };
    for (const [fill, token] of [
      [false, "s1"],
      [true, undefined],
    ] as const) {
      const client = await restoredMemoryClient(
        { fetch, clock: INSTANT_CLOCK, fillTimelineGaps: fill },
        token,
      );
      await client.syncOnce();
    }
    assert.equal(messagesCalls, 0);
  });

  it("stops at a page token it already used, and shows each skipped event once", async () => {
    let messagesCalls = 0;
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      const json = (b: unknown) => new Response(JSON.stringify(b), { status: 200 });
      if (u.pathname.endsWith("/sync")) {
        return json({
          next_batch: "s2",
          rooms: {
            join: { "!r:hs": { timeline: { events: [textMessage(7)], limited: true, prev_batch: "p6" } } },
          },
        });
      }
      messagesCalls++;
      // A server that points back to the pages already read: p6 -> p4 -> p6 -> ...
      const from = u.searchParams.get("from");
      if (from === "p6") return json({ start: "p6", end: "p4", chunk: [textMessage(6), textMessage(5)] });
      return json({ start: "p4", end: "p6", chunk: [textMessage(5), textMessage(4)] });
    };
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    const seen: string[] = [];
    client.on("room.event", (_r, ev, meta) => void seen.push(`${ev.content.body}:${meta.source}`));
    await client.syncOnce();
    assert.deepEqual(seen, ["m4:gap", "m5:gap", "m6:gap", "m7:sync"]);
    assert.equal(messagesCalls, 2);
  });

  it("leaves a gap the server refuses to fill (403 on a room we left) and syncs on", async () => {
    let syncs = 0;
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      const json = (b: unknown, status = 200) => new Response(JSON.stringify(b), { status });
      if (u.pathname.endsWith("/sync")) {
        syncs++;
        return json({
          next_batch: `s${syncs + 1}`,
          rooms: {
            leave: {
              "!r:hs": {
                timeline: {
                  events: [
                    textMessage(7),
                    {
                      ...textMessage(8),
                      type: "m.room.member",
                      state_key: "@me:hs",
                      content: { membership: "ban" },
                    },
                  ],
                  limited: true,
                  prev_batch: "p6",
                },
              },
            },
          },
        });
      }
      return json({ errcode: "M_FORBIDDEN", error: "not in room" }, 403);
    };
    const store = new MemoryClientStore();
    const client = await restoredMemoryClient({ store, fetch, clock: INSTANT_CLOCK }, "s1");
    const seen: string[] = [];
    client.on("room.event", (_r, ev, meta) => void seen.push(`${ev.eventId}:${meta.source}`));
    await client.syncOnce();
    assert.deepEqual(seen, ["$7:sync", "$8:sync"]);
    assert.equal(client.getRoom("!r:hs")?.membership, "ban");
    assert.equal((await store.loadSync())?.nextBatch, "s2");
  });

  it("announces a skipped state event once, though the state block brings it again", async () => {
    // The state block of a limited timeline is the state at its start: the gap's state changes
    // come in it again, after the filled gap raised them.
    const name = { ...textMessage(5), type: "m.room.name", state_key: "", content: { name: "Moved" } };
    const tomb = {
      ...textMessage(6),
      type: "m.room.tombstone",
      state_key: "",
      content: { replacement_room: "!n:hs" },
    };
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      const json = (b: unknown) => new Response(JSON.stringify(b), { status: 200 });
      if (u.pathname.endsWith("/sync")) {
        return json({
          next_batch: "s2",
          rooms: {
            join: {
              "!r:hs": {
                state: { events: [name, tomb] },
                timeline: { events: [textMessage(7)], limited: true, prev_batch: "p6" },
              },
            },
          },
        });
      }
      return json({ start: "p6", chunk: [tomb, name, textMessage(4)] });
    };
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    const seen: string[] = [];
    client.on("room.state", (_r, ev) => void seen.push(`state ${ev.event_id}`));
    client.on("room.tombstone", (_r, t) => void seen.push(`tombstone ${t.replacementRoomId}`));
    await client.syncOnce();
    assert.deepEqual(seen, ["state $5", "state $6", "tombstone !n:hs"]);
    assert.equal(client.getRoom("!r:hs")?.name, "Moved");
  });

  it("goes on past a page the server left empty (an ignored user's events) while it gives a token", async () => {
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      const json = (b: unknown) => new Response(JSON.stringify(b), { status: 200 });
      if (u.pathname.endsWith("/sync")) {
        return json({
          next_batch: "s2",
          rooms: {
            join: { "!r:hs": { timeline: { events: [textMessage(7)], limited: true, prev_batch: "p6" } } },
          },
        });
      }
      const from = u.searchParams.get("from");
      if (from === "p6") return json({ start: "p6", end: "p5", chunk: [textMessage(6)] });
      if (from === "p5") return json({ start: "p5", end: "p4", chunk: [] });
      return json({ start: "p4", chunk: [textMessage(4)] });
    };
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    const seen: string[] = [];
    client.on("room.event", (_r, ev, meta) => void seen.push(`${ev.content.body}:${meta.source}`));
    await client.syncOnce();
    assert.deepEqual(seen, ["m4:gap", "m6:gap", "m7:sync"]);
  });

  it(`reads at most MAX_GAP_FILL_PAGES (${MAX_GAP_FILL_PAGES}) pages for one gap`, async () => {
    let pages = 0;
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      const json = (b: unknown) => new Response(JSON.stringify(b), { status: 200 });
      if (u.pathname.endsWith("/sync")) {
        return json({
          next_batch: "s2",
          rooms: {
            join: { "!r:hs": { timeline: { events: [textMessage(7)], limited: true, prev_batch: "p0" } } },
          },
        });
      }
      // Empty pages with a new token each, for ever.
      pages++;
      return json({ start: u.searchParams.get("from"), end: `p${pages}`, chunk: [] });
    };
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    await client.syncOnce();
    assert.equal(pages, MAX_GAP_FILL_PAGES);
  });
});
