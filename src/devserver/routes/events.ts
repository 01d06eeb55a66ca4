// Sending, fetching, paginating and redacting room events.
import * as z from "../../wire/zod.ts";
import { forbidden, MatrixError, notFound } from "../errors.ts";
import type { Homeserver } from "../homeserver.ts";
import { canSeeEvent, redact, sendEvent, visibleEvents } from "../room-ops.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody, type RouteRequest } from "../router.ts";
import { clientEvent } from "../sync.ts";
import type { Authed, StreamEvent } from "../types.ts";

/** Most events one /messages page returns. */
export const MAX_MESSAGES_LIMIT = 1000;

const json = z.record(z.string(), z.unknown());

/** Pagination tokens: `t<pos>` = the gap after position `pos`; sync tokens are accepted too. */
export function parsePaginationToken(s: string): number {
  const m = /^(?:t(\d{1,15})|s(\d{1,15})_\d{1,15}_\d{1,15})$/.exec(s);
  if (!m) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid pagination token");
  return Number(m[1] ?? m[2]);
}

function visibleRange(hs: Homeserver, roomId: string, userId: string): number {
  const m = hs.rooms.membership(roomId, userId);
  if (!m || m.membership === "invite" || m.membership === "knock") {
    throw forbidden(`User ${userId} not in room ${roomId}`);
  }
  return m.membership === "join" ? hs.stream.current : m.stream_ordering;
}

export function registerEventRoutes({ hs, router }: RouteContext): void {
  router.client("PUT", "/rooms/:room/send/:type/:txn", (req) => {
    const a = authed(req);
    const content = jsonBody(req, json);
    const roomId = req.params.room!;
    // Idempotent per device and transaction ID: a retry gets the first event's ID back.
    const key = `send:${roomId}`;
    const prior = hs.accounts.getTxn(a.userId, a.deviceId, key, req.params.txn!);
    if (prior !== undefined) return { json: { event_id: prior } };
    const se = sendEvent(hs, roomId, a.userId, req.params.type!, content, undefined, {
      deviceId: a.deviceId,
      txnId: req.params.txn!,
    });
    hs.accounts.putTxn(a.userId, a.deviceId, key, req.params.txn!, se.event.event_id);
    return { json: { event_id: se.event.event_id } };
  });

  router.client("PUT", "/rooms/:room/redact/:event/:txn", (req) => {
    const a = authed(req);
    const body = jsonBody(req, z.object({ reason: z.optional(z.string()) }));
    const key = `redact:${req.params.room}`;
    const prior = hs.accounts.getTxn(a.userId, a.deviceId, key, req.params.txn!);
    if (prior !== undefined) return { json: { event_id: prior } };
    const se = redact(hs, req.params.room!, a.userId, req.params.event!, body.reason, {
      deviceId: a.deviceId,
      txnId: req.params.txn!,
    });
    hs.accounts.putTxn(a.userId, a.deviceId, key, req.params.txn!, se.event.event_id);
    return { json: { event_id: se.event.event_id } };
  });

  router.client("GET", "/rooms/:room/event/:event", (req) => {
    const a = authed(req);
    const se = hs.rooms.getEvent(req.params.event!);
    if (!se || se.event.room_id !== req.params.room || !canSeeEvent(hs, a.userId, se)) {
      throw notFound("Event not found.");
    }
    return { json: clientEvent(a, se) };
  });

  router.client("GET", "/rooms/:room/messages", (req) =>
    messages(hs, authed(req), req.params.room!, req.query),
  );

  const relations = (req: RouteRequest) => {
    const a = authed(req);
    const roomId = req.params.room!;
    const parent = hs.rooms.getEvent(req.params.event!);
    if (!parent || parent.event.room_id !== roomId || !canSeeEvent(hs, a.userId, parent)) {
      throw notFound("Event not found.");
    }
    const upTo = visibleRange(hs, roomId, a.userId);
    const dir = req.query.get("dir") ?? "b";
    if (dir !== "b" && dir !== "f") throw new MatrixError(400, "M_INVALID_PARAM", "dir must be b or f");
    const limitRaw = req.query.get("limit");
    const limit = limitRaw === null ? 50 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid limit");
    const capped = Math.min(limit, MAX_MESSAGES_LIMIT);
    const fromRaw = req.query.get("from");
    const toRaw = req.query.get("to");
    const relType = req.params.relType ?? null;
    const eventType = req.params.eventType ?? null;
    let chunk: StreamEvent[];
    let next: number | undefined;
    if (dir === "b") {
      const from = fromRaw !== null ? Math.min(parsePaginationToken(fromRaw), upTo) : upTo;
      const floor = toRaw !== null ? parsePaginationToken(toRaw) : 0;
      chunk = hs.rooms.relations(roomId, parent.event.event_id, relType, eventType, from, floor, capped + 1);
      if (chunk.length > capped) {
        chunk = chunk.slice(0, capped);
        next = chunk[chunk.length - 1]!.pos - 1;
      }
    } else {
      // Forwards: take everything after `from` (a small set per parent), oldest first.
      const from = fromRaw !== null ? parsePaginationToken(fromRaw) : 0;
      const to = Math.min(toRaw !== null ? parsePaginationToken(toRaw) : upTo, upTo);
      const all = hs.rooms
        .relations(roomId, parent.event.event_id, relType, eventType, to, from, MAX_MESSAGES_LIMIT + 1)
        .reverse();
      chunk = all.slice(0, capped);
      if (all.length > capped) next = chunk[chunk.length - 1]!.pos;
    }
    const body: Record<string, unknown> = {
      chunk: visibleEvents(hs, a.userId, roomId, chunk).map((se) => clientEvent(a, se)),
    };
    if (next !== undefined) body.next_batch = `t${next}`;
    if (fromRaw !== null) body.prev_batch = fromRaw;
    return { json: body };
  };
  // Relations live under /_matrix/client/v1 only.
  router.add("GET", "/_matrix/client/v1/rooms/:room/relations/:event", relations);
  router.add("GET", "/_matrix/client/v1/rooms/:room/relations/:event/:relType", relations);
  router.add("GET", "/_matrix/client/v1/rooms/:room/relations/:event/:relType/:eventType", relations);

  router.add("GET", "/_matrix/client/v1/rooms/:room/timestamp_to_event", (req) => {
    const a = authed(req);
    const roomId = req.params.room!;
    const upTo = visibleRange(hs, roomId, a.userId);
    const ts = Number(req.query.get("ts"));
    const dir = req.query.get("dir");
    if (!Number.isSafeInteger(ts) || (dir !== "f" && dir !== "b")) {
      throw new MatrixError(400, "M_INVALID_PARAM", "ts (integer) and dir (f or b) are required");
    }
    const se = hs.rooms.eventNearTs(roomId, ts, dir, upTo);
    if (!se || !canSeeEvent(hs, a.userId, se))
      throw notFound(`No event found ${dir === "f" ? "after" : "before"} ${ts}`);
    return { json: { event_id: se.event.event_id, origin_server_ts: se.event.origin_server_ts } };
  });

  // Thread roots, most recently active first, each with the spec's thread summary.
  router.add("GET", "/_matrix/client/v1/rooms/:room/threads", (req) => {
    const a = authed(req);
    const roomId = req.params.room!;
    const upTo = visibleRange(hs, roomId, a.userId);
    const include = req.query.get("include") ?? "all";
    if (include !== "all" && include !== "participated") {
      throw new MatrixError(400, "M_INVALID_PARAM", "include must be all or participated");
    }
    const limitRaw = req.query.get("limit");
    const limit = limitRaw === null ? 50 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid limit");
    const capped = Math.min(limit, MAX_MESSAGES_LIMIT);
    const fromRaw = req.query.get("from");
    const from = fromRaw !== null ? Math.min(parsePaginationToken(fromRaw), upTo) : upTo;
    const rows = hs.rooms.threads(roomId, a.userId, upTo, from, capped + 1);
    const page = rows.slice(0, capped);
    const chunk: unknown[] = [];
    for (const t of page) {
      const root = hs.rooms.getEvent(t.root);
      if (!root || root.event.room_id !== roomId || !canSeeEvent(hs, a.userId, root)) continue;
      const participated = t.participated || root.event.sender === a.userId;
      if (include === "participated" && !participated) continue;
      const latest = hs.rooms.eventAt(t.latest);
      const ev = clientEvent(a, root);
      ev.unsigned = {
        ...(ev.unsigned ?? {}),
        "m.relations": {
          "m.thread": {
            count: t.replies,
            current_user_participated: participated,
            ...(latest ? { latest_event: clientEvent(a, latest) } : {}),
          },
        },
      };
      chunk.push(ev);
    }
    const body: Record<string, unknown> = { chunk };
    if (rows.length > capped) body.next_batch = `t${page[page.length - 1]!.latest - 1}`;
    return { json: body };
  });

  router.client("GET", "/rooms/:room/context/:event", (req) => {
    const a = authed(req);
    const roomId = req.params.room!;
    const se = hs.rooms.getEvent(req.params.event!);
    if (!se || se.event.room_id !== roomId || !canSeeEvent(hs, a.userId, se))
      throw notFound("Event not found.");
    const upTo = visibleRange(hs, roomId, a.userId);
    const limitRaw = req.query.get("limit");
    const asked = limitRaw === null ? 10 : Number(limitRaw);
    // A negative limit reached SQLite as LIMIT -n, which is no limit at all.
    if (!Number.isInteger(asked) || asked < 0) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid limit");
    const limit = Math.min(asked, MAX_MESSAGES_LIMIT);
    const half = Math.floor(limit / 2);
    const before = hs.rooms.eventsBefore(roomId, se.pos - 1, 0, half);
    const after = hs.rooms.eventsAfter(roomId, se.pos, upTo, limit - half);
    const last = after[after.length - 1]?.pos ?? se.pos;
    const first = before[before.length - 1]?.pos ?? se.pos;
    return {
      json: {
        event: clientEvent(a, se),
        events_before: visibleEvents(hs, a.userId, roomId, before).map((e) => clientEvent(a, e)),
        events_after: visibleEvents(hs, a.userId, roomId, after).map((e) => clientEvent(a, e)),
        start: `t${first - 1}`,
        end: `t${last}`,
        state: hs.rooms.stateAt(roomId, last).map((e) => clientEvent(a, e)),
      },
    };
  });
}

function messages(hs: Homeserver, a: Authed, roomId: string, q: URLSearchParams) {
  if (!hs.rooms.getRoom(roomId)) throw forbidden(`User ${a.userId} not in room ${roomId}`);
  const upTo = visibleRange(hs, roomId, a.userId);
  const dir = q.get("dir") ?? "b";
  if (dir !== "b" && dir !== "f") throw new MatrixError(400, "M_INVALID_PARAM", "dir must be b or f");
  const limitRaw = q.get("limit");
  const limit = limitRaw === null ? 10 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 0) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid limit");
  const capped = Math.min(limit, MAX_MESSAGES_LIMIT);
  const fromRaw = q.get("from");
  const from = fromRaw !== null ? Math.min(parsePaginationToken(fromRaw), upTo) : dir === "b" ? upTo : 0;
  const toRaw = q.get("to");
  const to = toRaw !== null ? parsePaginationToken(toRaw) : undefined;
  let chunk: StreamEvent[];
  let end: number;
  if (dir === "b") {
    chunk = hs.rooms.eventsBefore(roomId, from, to ?? 0, capped);
    end = (chunk[chunk.length - 1]?.pos ?? from + 1) - 1;
  } else {
    chunk = hs.rooms.eventsAfter(roomId, from, Math.min(to ?? upTo, upTo), capped);
    end = chunk[chunk.length - 1]?.pos ?? from;
  }
  const filter = parseEventFilter(q.get("filter"));
  const lazy = filter.lazy;
  const visible = visibleEvents(hs, a.userId, roomId, chunk).filter((se) => filter.accepts(se.event.type));
  const body: Record<string, unknown> = {
    start: `t${from}`,
    chunk: visible.map((se) => clientEvent(a, se)),
  };
  // No `end` once there is nothing further in that direction.
  if (chunk.length === capped && capped > 0) body.end = `t${end}`;
  if (lazy) {
    const senders = new Set(visible.map((se) => se.event.sender));
    const at = dir === "b" ? from : end;
    body.state = hs.rooms
      .stateAt(roomId, at)
      .filter((se) => se.event.type === "m.room.member" && senders.has(se.event.state_key ?? ""))
      .map((se) => clientEvent(a, se));
  }
  return { json: body };
}

interface EventFilter {
  lazy: boolean;
  accepts(type: string): boolean;
}

const filterSchema = z.looseObject({
  lazy_load_members: z.optional(z.boolean()),
  types: z.optional(z.array(z.string())),
  not_types: z.optional(z.array(z.string())),
});

function parseEventFilter(raw: string | null): EventFilter {
  if (raw === null) return { lazy: false, accepts: () => true };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new MatrixError(400, "M_INVALID_PARAM", "filter is not JSON");
  }
  const r = filterSchema.safeParse(parsed);
  if (!r.success) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid filter");
  const f = r.data;
  return {
    lazy: f.lazy_load_members === true,
    accepts: (t) => (f.types === undefined || f.types.includes(t)) && !(f.not_types ?? []).includes(t),
  };
}
