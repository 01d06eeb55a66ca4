// One event of each kind in each place a `/sync` response carries events, all with one content
// given as JSON text (so what JSON.stringify would change, such as 1e400, stays as written): for
// tests of what the event schemas and the fast sync path drop.
import type { SyncResponse } from "../sync.ts";

const FIELDS = { event_id: "$e", type: "m.room.power_levels", sender: "@a:x", origin_server_ts: 1 };

/** Each kind of event (as JSON text) with `content` (JSON text) as its content. */
export function eventsWithContent(content: string) {
  const f = (o: Record<string, unknown>) => JSON.stringify(o).replace(/}$/, `,"content":${content}}`);
  return {
    state: f({ ...FIELDS, state_key: "" }),
    timeline: f(FIELDS),
    stripped: f({ type: "m.room.power_levels", state_key: "", sender: "@a:x" }),
    basic: f({ type: "x.a" }),
    toDevice: f({ type: "x.t", sender: "@a:x" }),
  };
}

/** A sync response (JSON text) with such an event in each of the 7 places, in rooms !r:x and !i:x. */
export function syncWithContent(content: string): string {
  const e = eventsWithContent(content);
  return (
    `{"next_batch":"s1","account_data":{"events":[${e.basic}]},"to_device":{"events":[${e.toDevice}]},` +
    `"rooms":{"join":{"!r:x":{"state":{"events":[${e.state}]},"timeline":{"events":[${e.timeline}]},` +
    `"ephemeral":{"events":[${e.basic}]},"account_data":{"events":[${e.basic}]}}},` +
    `"invite":{"!i:x":{"invite_state":{"events":[${e.stripped}]}}}}}`
  );
}

/** Events kept in the places `syncWithContent` fills. */
export function countEvents(s: SyncResponse): number {
  const join = s.rooms?.join?.["!r:x"];
  return [
    s.account_data?.events,
    s.to_device?.events,
    join?.state?.events,
    join?.timeline?.events,
    join?.ephemeral?.events,
    join?.account_data?.events,
    s.rooms?.invite?.["!i:x"]?.invite_state?.events,
  ].reduce((n, events) => n + (events?.length ?? 0), 0);
}

/** Levels of objects and arrays in `v` (a scalar has 0), by a plain walk: the reference for tests. */
export function depthOf(v: unknown): number {
  if (typeof v !== "object" || v === null) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}
