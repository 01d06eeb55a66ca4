// An event a response carries twice in one room (twice in its timeline, or in both the filled gap
// and the timeline, as a server whose `prev_batch` is one event late gives it) reaches listeners
// once, its state applied as it comes; so does one a gap fill brings again after an earlier
// response had it (the spec: `/messages` and `/sync` order events differently, and clients should
// drop what comes twice by event ID).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { INSTANT_CLOCK, restoredMemoryClient, textMessage } from "../test-support/scripted-sync.ts";
import { MAX_EMITTED_EVENT_IDS, SyncedState } from "./state.ts";

const topic = (n: number) => ({
  ...textMessage(n),
  type: "m.room.topic",
  state_key: "",
  content: { topic: `t${n}` },
});
const json = (b: unknown) => new Response(JSON.stringify(b), { status: 200 });

/**
 * A server whose first /sync brings `first` in "!r:hs", and the next a limited timeline (`$4`)
 * whose gap /messages fills with `page` (newest first).
 */
function thenGapFilled(first: object[], page: object[]) {
  const bodies = [
    { next_batch: "s2", rooms: { join: { "!r:hs": { timeline: { events: first } } } } },
    {
      next_batch: "s3",
      rooms: {
        join: { "!r:hs": { timeline: { events: [textMessage(4)], limited: true, prev_batch: "p4" } } },
      },
    },
  ];
  return async (url: string): Promise<Response> => {
    const u = new URL(url);
    if (u.pathname.endsWith("/sync")) return json(bodies.shift() ?? { next_batch: "s4" });
    return json({ start: "p4", chunk: page });
  };
}

describe("an event twice in one response", () => {
  it("is emitted once, from the timeline or from the gap and the timeline", async () => {
    const fetch = async (url: string): Promise<Response> => {
      const u = new URL(url);
      if (u.pathname.endsWith("/sync")) {
        const events = [textMessage(6), topic(7), textMessage(8), topic(7), textMessage(8)];
        return json({
          next_batch: "s2",
          rooms: { join: { "!r:hs": { timeline: { events, limited: true, prev_batch: "p6" } } } },
        });
      }
      // The page reaches one event too far: `$6` is the timeline's first.
      return json({ start: "p6", chunk: [textMessage(6), textMessage(5)] });
    };
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    const seen: string[] = [];
    client.on("room.event", (_r, ev, meta) => void seen.push(`${ev.eventId}:${meta.source}`));
    const states: string[] = [];
    client.on("room.state", (_r, ev) => void states.push(ev.event_id));
    await client.syncOnce();
    assert.deepEqual(seen, ["$5:gap", "$6:gap", "$7:sync", "$8:sync"]);
    assert.deepEqual(states, ["$7"]);
    assert.equal(client.getRoom("!r:hs")?.topic, "t7");
    await client.close();
  });

  it("is emitted once when a later gap fill brings it again", async () => {
    // The gap page, newest first, down to one the previous response had (`$2`).
    const fetch = thenGapFilled([textMessage(1), textMessage(2)], [textMessage(3), textMessage(2)]);
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    const seen: string[] = [];
    client.on("room.event", (_r, ev, meta) => void seen.push(`${ev.eventId}:${meta.source}`));
    await client.syncOnce();
    await client.syncOnce();
    assert.deepEqual(seen, ["$1:sync", "$2:sync", "$3:gap", "$4:sync"]);
    await client.close();
  });

  it("leaves the state alone when a gap fill brings an older state event again", async () => {
    // `/messages` orders events by the room's graph, `/sync` by arrival: the page reaches back to
    // `$1`, which the previous response had, and the state block (unchanged topic) has no topic.
    const fetch = thenGapFilled([topic(1), topic(2)], [textMessage(3), topic(1)]);
    const client = await restoredMemoryClient({ fetch, clock: INSTANT_CLOCK }, "s1");
    await client.syncOnce();
    const states: string[] = [];
    client.on("room.state", (_r, ev) => void states.push(ev.event_id));
    await client.syncOnce();
    assert.equal(client.getRoom("!r:hs")?.topic, "t2");
    assert.deepEqual(states, []);
    await client.close();
  });

  it("remembers at most MAX_EMITTED_EVENT_IDS emitted events, forgetting the oldest first", () => {
    const synced = new SyncedState();
    for (let i = 0; i <= MAX_EMITTED_EVENT_IDS; i++) assert.equal(synced.firstEmission(`$${i}`), true);
    assert.equal(synced.emittedLately("$0"), false);
    assert.equal(synced.emittedLately("$1"), true);
    assert.equal(synced.firstEmission(`$${MAX_EMITTED_EVENT_IDS}`), false);
  });
});
