// Room creation, membership, state, members, upgrades, typing, receipts and read markers.
import * as z from "../../wire/zod.ts";
import { forbidden, MatrixError, notFound } from "../errors.ts";
import type { Homeserver } from "../homeserver.ts";
import { membershipOf } from "../room-auth.ts";
import { changeMembership, createRoom, resolveRoom, sendEvent, upgradeRoom } from "../room-ops.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";
import { clientEvent } from "../sync.ts";
import type { Authed, JsonObject } from "../types.ts";

const json = z.record(z.string(), z.unknown());
const userIdSchema = z.string().check(z.regex(/^@[^:]+:.+$/, "must be a user ID"));

/** Most users one createRoom may invite, and most `initial_state` events it may carry. */
export const MAX_CREATE_ROOM_INVITES = 1000;
export const MAX_CREATE_ROOM_INITIAL_STATE = 1000;

const createRoomSchema = z.object({
  visibility: z.optional(z.enum(["public", "private"])),
  room_alias_name: z.optional(z.string().check(z.maxLength(255))),
  name: z.optional(z.string()),
  topic: z.optional(z.string()),
  invite: z.optional(z.array(userIdSchema).check(z.maxLength(MAX_CREATE_ROOM_INVITES))),
  invite_3pid: z.optional(z.array(z.unknown())),
  room_version: z.optional(z.string()),
  creation_content: z.optional(json),
  initial_state: z.optional(
    z
      .array(z.object({ type: z.string(), state_key: z.optional(z.string()), content: json }))
      .check(z.maxLength(MAX_CREATE_ROOM_INITIAL_STATE)),
  ),
  preset: z.optional(z.enum(["private_chat", "public_chat", "trusted_private_chat"])),
  is_direct: z.optional(z.boolean()),
  power_level_content_override: z.optional(json),
});

const targetSchema = z.object({ user_id: userIdSchema, reason: z.optional(z.string()) });
const reasonSchema = z.object({ reason: z.optional(z.string()) });

/** The room must exist and the user must currently be joined to it. */
export function requireJoined(hs: Homeserver, roomId: string, userId: string): void {
  if (!hs.rooms.getRoom(roomId)) throw forbidden(`User ${userId} not in room ${roomId}`);
  if (membershipOf(hs, roomId, userId) !== "join") throw forbidden(`User ${userId} not in room ${roomId}`);
}

/** The position up to which `userId` may read a room's state: now if joined, else when they left. */
function visibleUpTo(hs: Homeserver, roomId: string, userId: string): number {
  const m = hs.rooms.membership(roomId, userId);
  if (!m || m.membership === "invite" || m.membership === "knock") {
    throw forbidden(`User ${userId} not in room ${roomId}`);
  }
  return m.membership === "join" ? hs.stream.current : m.stream_ordering;
}

function membersAt(hs: Homeserver, a: Authed, roomId: string): JsonObject[] {
  const at = visibleUpTo(hs, roomId, a.userId);
  return hs.rooms
    .stateAt(roomId, at)
    .filter((se) => se.event.type === "m.room.member")
    .map((se) => clientEvent(a, se) as unknown as JsonObject);
}

export function registerRoomRoutes({ hs, router }: RouteContext): void {
  router.client("POST", "/createRoom", (req) => {
    const a = authed(req);
    const body = jsonBody(req, createRoomSchema);
    const r = createRoom(hs, a.userId, body);
    return { json: r.alias ? { room_id: r.roomId, room_alias: r.alias } : { room_id: r.roomId } };
  });

  const join = (a: Authed, idOrAlias: string): { json: JsonObject } => {
    const roomId = resolveRoom(hs, idOrAlias);
    changeMembership(hs, roomId, a.userId, a.userId, "join");
    return { json: { room_id: roomId } };
  };
  router.client("POST", "/join/:room", (req) => join(authed(req), req.params.room!));
  router.client("POST", "/rooms/:room/join", (req) => join(authed(req), req.params.room!));

  router.client("POST", "/rooms/:room/invite", (req) => {
    const a = authed(req);
    const body = jsonBody(req, targetSchema);
    changeMembership(hs, req.params.room!, a.userId, body.user_id, "invite", reasonOf(body.reason));
    return { json: {} };
  });
  router.client("POST", "/rooms/:room/leave", (req) => {
    const a = authed(req);
    const body = jsonBody(req, reasonSchema);
    if (!hs.rooms.getRoom(req.params.room!)) throw notFound("Unknown room");
    changeMembership(hs, req.params.room!, a.userId, a.userId, "leave", reasonOf(body.reason));
    return { json: {} };
  });
  router.client("POST", "/rooms/:room/kick", (req) => {
    const a = authed(req);
    const body = jsonBody(req, targetSchema);
    const m = membershipOf(hs, req.params.room!, body.user_id);
    if (m === "ban" || m === "leave" || m === undefined)
      throw forbidden(`${body.user_id} is not in the room`);
    changeMembership(hs, req.params.room!, a.userId, body.user_id, "leave", reasonOf(body.reason));
    return { json: {} };
  });
  router.client("POST", "/rooms/:room/ban", (req) => {
    const a = authed(req);
    const body = jsonBody(req, targetSchema);
    changeMembership(hs, req.params.room!, a.userId, body.user_id, "ban", reasonOf(body.reason));
    return { json: {} };
  });
  router.client("POST", "/rooms/:room/unban", (req) => {
    const a = authed(req);
    const body = jsonBody(req, targetSchema);
    if (membershipOf(hs, req.params.room!, body.user_id) !== "ban")
      throw forbidden(`${body.user_id} is not banned`);
    changeMembership(hs, req.params.room!, a.userId, body.user_id, "leave", reasonOf(body.reason));
    return { json: {} };
  });
  router.client("POST", "/rooms/:room/forget", (req) => {
    const a = authed(req);
    const m = hs.rooms.membership(req.params.room!, a.userId);
    if (!m) throw notFound("Not a known room");
    if (m.membership === "join" || m.membership === "invite") {
      throw new MatrixError(400, "M_UNKNOWN", "User must leave the room before forgetting it");
    }
    hs.rooms.forget(req.params.room!, a.userId);
    return { json: {} };
  });
  router.client("GET", "/joined_rooms", (req) => {
    const a = authed(req);
    const rooms = hs.rooms
      .roomsForUser(a.userId)
      .filter((m) => m.membership === "join")
      .map((m) => m.room_id);
    return { json: { joined_rooms: rooms } };
  });

  router.client("GET", "/rooms/:room/state", (req) => {
    const a = authed(req);
    const at = visibleUpTo(hs, req.params.room!, a.userId);
    return { json: hs.rooms.stateAt(req.params.room!, at).map((se) => clientEvent(a, se)) };
  });
  const getState = (a: Authed, roomId: string, type: string, stateKey: string, format: string | null) => {
    const at = visibleUpTo(hs, roomId, a.userId);
    const ev = hs.rooms.stateEventAt(roomId, type, stateKey, at);
    if (!ev) throw notFound("Event not found.");
    return { json: format === "event" ? ev : ev.content };
  };
  router.client("GET", "/rooms/:room/state/:type", (req) =>
    getState(authed(req), req.params.room!, req.params.type!, "", req.query.get("format")),
  );
  router.client("GET", "/rooms/:room/state/:type/:key", (req) =>
    getState(authed(req), req.params.room!, req.params.type!, req.params.key!, req.query.get("format")),
  );
  const putState = (a: Authed, roomId: string, type: string, stateKey: string, content: JsonObject) => {
    if (type === "m.room.member") {
      // Membership goes through the same rules as the dedicated endpoints.
      const se = sendEvent(hs, roomId, a.userId, type, content, stateKey);
      return { json: { event_id: se.event.event_id } };
    }
    // Re-sending identical state is a no-op that returns the existing event, as Synapse does.
    const cur = hs.rooms.stateEvent(roomId, type, stateKey);
    if (cur && cur.sender === a.userId && JSON.stringify(cur.content) === JSON.stringify(content)) {
      requireJoined(hs, roomId, a.userId);
      return { json: { event_id: cur.event_id } };
    }
    const se = sendEvent(hs, roomId, a.userId, type, content, stateKey);
    return { json: { event_id: se.event.event_id } };
  };
  router.client("PUT", "/rooms/:room/state/:type", (req) =>
    putState(authed(req), req.params.room!, req.params.type!, "", jsonBody(req, json)),
  );
  router.client("PUT", "/rooms/:room/state/:type/:key", (req) =>
    putState(authed(req), req.params.room!, req.params.type!, req.params.key!, jsonBody(req, json)),
  );

  router.client("GET", "/rooms/:room/members", (req) => {
    const a = authed(req);
    let chunk = membersAt(hs, a, req.params.room!);
    const only = req.query.get("membership");
    const not = req.query.get("not_membership");
    if (only) chunk = chunk.filter((e) => (e.content as JsonObject).membership === only);
    if (not) chunk = chunk.filter((e) => (e.content as JsonObject).membership !== not);
    return { json: { chunk } };
  });
  router.client("GET", "/rooms/:room/joined_members", (req) => {
    const a = authed(req);
    requireJoined(hs, req.params.room!, a.userId);
    const joined: Record<string, JsonObject> = {};
    for (const e of membersAt(hs, a, req.params.room!)) {
      const c = e.content as JsonObject;
      if (c.membership !== "join") continue;
      joined[e.state_key as string] = {
        display_name: c.displayname ?? null,
        avatar_url: c.avatar_url ?? null,
      };
    }
    return { json: { joined } };
  });

  router.client("POST", "/rooms/:room/upgrade", (req) => {
    const a = authed(req);
    const body = jsonBody(req, z.object({ new_version: z.string() }));
    return { json: { replacement_room: upgradeRoom(hs, req.params.room!, a.userId, body.new_version) } };
  });

  router.client("PUT", "/rooms/:room/typing/:user", (req) => {
    const a = authed(req);
    if (req.params.user !== a.userId) throw forbidden("Cannot set another user's typing state");
    const body = jsonBody(
      req,
      z.object({ typing: z.boolean(), timeout: z.optional(z.number().check(z.int(), z.nonnegative())) }),
    );
    requireJoined(hs, req.params.room!, a.userId);
    hs.typing.set(req.params.room!, a.userId, body.typing, body.timeout ?? 30_000);
    return { json: {} };
  });

  const putReceipt = (a: Authed, roomId: string, type: string, eventId: string, threadId: string) => {
    if (type !== "m.read" && type !== "m.read.private" && type !== "m.fully_read") {
      throw new MatrixError(400, "M_INVALID_PARAM", `Receipt type ${type} is not supported`);
    }
    requireJoined(hs, roomId, a.userId);
    const ev = hs.rooms.getEvent(eventId);
    if (!ev || ev.event.room_id !== roomId) throw notFound("Event not found");
    if (type === "m.fully_read") {
      hs.tx(() =>
        hs.misc.putAccountData(
          a.userId,
          roomId,
          "m.fully_read",
          JSON.stringify({ event_id: eventId }),
          hs.stream.next(),
        ),
      );
      hs.notifier.notify([a.userId]);
      return;
    }
    hs.tx(() =>
      hs.misc.putReceipt({
        room_id: roomId,
        user_id: a.userId,
        receipt_type: type,
        thread_id: threadId,
        event_id: eventId,
        ts: Date.now(),
        stream_id: hs.stream.next(),
      }),
    );
    // Private receipts are for the user's own devices only.
    if (type === "m.read.private") hs.notifier.notify([a.userId]);
    else hs.notifyRoom(roomId);
  };
  router.client("POST", "/rooms/:room/receipt/:type/:event", (req) => {
    const a = authed(req);
    const body = jsonBody(req, z.object({ thread_id: z.optional(z.string()) }));
    const thread = body.thread_id;
    // The spec's values: "main" or a thread root of this room (each thread ID is a receipt row that
    // every member's sync carries, so made-up ones are refused).
    if (
      thread !== undefined &&
      thread !== "main" &&
      hs.rooms.getEvent(thread)?.event.room_id !== req.params.room
    ) {
      throw new MatrixError(400, "M_INVALID_PARAM", 'thread_id must be "main" or an event of this room');
    }
    putReceipt(a, req.params.room!, req.params.type!, req.params.event!, thread ?? "");
    return { json: {} };
  });
  router.client("POST", "/rooms/:room/read_markers", (req) => {
    const a = authed(req);
    const body = jsonBody(
      req,
      z.object({
        "m.fully_read": z.optional(z.string()),
        "m.read": z.optional(z.string()),
        "m.read.private": z.optional(z.string()),
      }),
    );
    for (const type of ["m.fully_read", "m.read", "m.read.private"] as const) {
      const id = body[type];
      if (id !== undefined) putReceipt(a, req.params.room!, type, id, "");
    }
    return { json: {} };
  });
}

function reasonOf(reason: string | undefined): JsonObject {
  return reason !== undefined ? { reason } : {};
}
