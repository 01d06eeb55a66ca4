// Timeline events already emitted from a response that another process sharing the crypto store had
// handled first: the loop then syncs on from the shared position, whose next response may carry
// them again. They are dropped from it, so listeners see each event once.
import type { SyncResponse } from "../../wire/index.ts";

/** Most event IDs remembered (a response's worth is far less; oldest dropped first). */
export const MAX_ECHO_EVENTS = 5_000;

export function rememberTimeline(echo: Set<string>, res: SyncResponse): void {
  for (const section of [res.rooms?.join, res.rooms?.leave]) {
    for (const room of Object.values(section ?? {})) {
      for (const ev of room.timeline?.events ?? []) {
        echo.delete(ev.event_id);
        echo.add(ev.event_id);
      }
    }
  }
  for (const id of echo) {
    if (echo.size <= MAX_ECHO_EVENTS) break;
    echo.delete(id);
  }
}

/** `res` without the timeline events in `echo` (the response itself is left as it was). */
export function withoutEchoes(res: SyncResponse, echo: ReadonlySet<string>): SyncResponse {
  if (echo.size === 0 || res.rooms === undefined) return res;
  const strip = <R extends { timeline?: { events?: { event_id: string }[] } }>(
    rooms: Record<string, R> | undefined,
  ): Record<string, R> | undefined => {
    if (rooms === undefined) return undefined;
    const out: Record<string, R> = {};
    for (const [roomId, room] of Object.entries(rooms)) {
      const events = room.timeline?.events;
      out[roomId] =
        events === undefined
          ? room
          : { ...room, timeline: { ...room.timeline, events: events.filter((e) => !echo.has(e.event_id)) } };
    }
    return out;
  };
  const rooms = { ...res.rooms };
  const join = strip(res.rooms.join);
  const leave = strip(res.rooms.leave);
  if (join !== undefined) rooms.join = join;
  if (leave !== undefined) rooms.leave = leave;
  return { ...res, rooms };
}
