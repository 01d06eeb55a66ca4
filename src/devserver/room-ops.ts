// Room operations shared by routes: create, membership changes, sending, redaction, upgrade.

import type { CreateRoomRequest } from "../wire/rooms.ts";
import { forbidden, MatrixError, notFound } from "./errors.ts";
import { canonicalJson, DEFAULT_ROOM_VERSION, isRoomVersion, redactEvent } from "./event-format.ts";
import { type Homeserver, randomId } from "./homeserver.ts";
import {
  authorizeEvent,
  checkPowerLevelsShape,
  membershipOf,
  roomPowerLevels,
  userPower,
} from "./room-auth.ts";
import type { JsonObject, StreamEvent } from "./types.ts";

/** The spec's size limits on events: the whole event 65536 bytes, type and state key 255 bytes. */
export const MAX_EVENT_BYTES = 65_536;
export const MAX_EVENT_TYPE_BYTES = 255;
/** Longest room alias, sigil and server name included (the spec's grammar). */
export const MAX_ALIAS_BYTES = 255;
/** Most room aliases one user may have created (and not deleted); past it 403 M_FORBIDDEN. */
export const MAX_ALIASES_PER_USER = 1000;

function checkEventSize(type: string, content: JsonObject, stateKey: string | undefined): void {
  if (Buffer.byteLength(type) > MAX_EVENT_TYPE_BYTES)
    throw new MatrixError(400, "M_BAD_JSON", "Event type too long");
  if (stateKey !== undefined && Buffer.byteLength(stateKey) > MAX_EVENT_TYPE_BYTES) {
    throw new MatrixError(400, "M_BAD_JSON", "State key too long");
  }
  // Content plus the envelope the server adds (IDs, sender, timestamps, signatures on a real PDU).
  if (Buffer.byteLength(canonicalJson(content)) + 1024 > MAX_EVENT_BYTES) {
    throw new MatrixError(413, "M_TOO_LARGE", "Event too large");
  }
}

/** Checks then appends; the one path every client-originated room event takes. */
export function sendEvent(
  hs: Homeserver,
  roomId: string,
  sender: string,
  type: string,
  content: JsonObject,
  stateKey?: string,
  txn?: { deviceId: string; txnId: string },
): StreamEvent {
  checkEventSize(type, content, stateKey);
  authorizeEvent(hs, roomId, sender, type, content, stateKey);
  return hs.appendEvent(roomId, sender, type, content, {
    ...(stateKey !== undefined ? { stateKey } : {}),
    ...(txn ? { txn } : {}),
  });
}

function memberContent(
  hs: Homeserver,
  userId: string,
  membership: string,
  extra: JsonObject = {},
): JsonObject {
  const content: JsonObject = { membership, ...extra };
  if (membership === "join" || membership === "invite") {
    const u = hs.accounts.getUser(userId);
    if (u?.displayname) content.displayname = u.displayname;
    if (u?.avatar_url) content.avatar_url = u.avatar_url;
  }
  return content;
}

export function changeMembership(
  hs: Homeserver,
  roomId: string,
  sender: string,
  target: string,
  membership: "join" | "invite" | "leave" | "ban",
  extra: JsonObject = {},
): StreamEvent {
  if (!hs.rooms.getRoom(roomId)) throw notFound("Unknown room");
  if (membership !== "join" && membership !== "leave" && !hs.accounts.getUser(target)) {
    // No federation: a remote or unknown user can never act on the invite.
    throw notFound(`Unknown user ${target}`);
  }
  return sendEvent(hs, roomId, sender, "m.room.member", memberContent(hs, target, membership, extra), target);
}

export function createRoom(
  hs: Homeserver,
  creator: string,
  req: CreateRoomRequest,
): { roomId: string; alias?: string } {
  const version = req.room_version ?? DEFAULT_ROOM_VERSION;
  if (!isRoomVersion(version)) {
    throw new MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", `Room version ${version} is not supported`);
  }
  let alias: string | undefined;
  if (req.room_alias_name !== undefined) {
    if (/[:\s#]/.test(req.room_alias_name) || req.room_alias_name === "") {
      throw new MatrixError(400, "M_INVALID_PARAM", "Invalid characters in room alias");
    }
    alias = `#${req.room_alias_name}:${hs.serverName}`;
    if (Buffer.byteLength(alias) > MAX_ALIAS_BYTES) {
      throw new MatrixError(400, "M_INVALID_PARAM", `A room alias is at most ${MAX_ALIAS_BYTES} bytes`);
    }
    if (hs.rooms.countAliasesBy(creator) >= MAX_ALIASES_PER_USER) {
      throw new MatrixError(
        403,
        "M_FORBIDDEN",
        `A user may create at most ${MAX_ALIASES_PER_USER} room aliases`,
      );
    }
    if (hs.rooms.getAlias(alias)) throw new MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken");
  }
  for (const u of req.invite ?? []) {
    if (!hs.accounts.getUser(u)) throw notFound(`Unknown user ${u}`);
  }
  for (const st of req.initial_state ?? []) {
    // These are the server's to write (creation, memberships go through their own rules).
    if (st.type === "m.room.create" || st.type === "m.room.member") {
      throw new MatrixError(400, "M_INVALID_PARAM", `initial_state may not contain ${st.type}`);
    }
    checkEventSize(st.type, st.content, st.state_key ?? "");
  }
  if (req.power_level_content_override) checkPowerLevelsShape(req.power_level_content_override);
  const preset = req.preset ?? (req.visibility === "public" ? "public_chat" : "private_chat");
  const roomId = `!${randomId(18)}:${hs.serverName}`;
  const invitees = req.invite ?? [];

  hs.tx(() => {
    hs.rooms.createRoom(roomId, version, creator);
    const append = (type: string, content: JsonObject, stateKey = ""): void => {
      // Name, topic, creation content and power-level overrides come from the client too.
      checkEventSize(type, content, stateKey);
      hs.appendEvent(roomId, creator, type, content, { stateKey });
    };
    const create: JsonObject = { room_version: version, ...(req.creation_content ?? {}) };
    if (version === "10") create.creator = creator;
    else delete create.creator;
    append("m.room.create", create);
    append("m.room.member", memberContent(hs, creator, "join"), creator);
    const users: Record<string, number> = { [creator]: 100 };
    if (preset === "trusted_private_chat") for (const u of invitees) users[u] = 100;
    append("m.room.power_levels", {
      users,
      users_default: 0,
      events: {
        "m.room.name": 50,
        "m.room.power_levels": 100,
        "m.room.history_visibility": 100,
        "m.room.canonical_alias": 50,
        "m.room.avatar": 50,
        "m.room.tombstone": 100,
        "m.room.server_acl": 100,
        "m.room.encryption": 100,
      },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: preset === "public_chat" ? 50 : 0,
      ...(req.power_level_content_override ?? {}),
    });
    if (alias) {
      hs.rooms.putAlias(alias, roomId, creator);
      append("m.room.canonical_alias", { alias });
    }
    append("m.room.join_rules", { join_rule: preset === "public_chat" ? "public" : "invite" });
    append("m.room.history_visibility", { history_visibility: "shared" });
    if (preset !== "public_chat") append("m.room.guest_access", { guest_access: "can_join" });
    for (const s of req.initial_state ?? []) append(s.type, s.content, s.state_key ?? "");
    if (req.name !== undefined) append("m.room.name", { name: req.name });
    if (req.topic !== undefined) append("m.room.topic", { topic: req.topic });
    if (req.visibility === "public") hs.rooms.setPublic(roomId, true);
  });
  for (const u of invitees) {
    changeMembership(hs, roomId, creator, u, "invite", req.is_direct ? { is_direct: true } : {});
  }
  return alias ? { roomId, alias } : { roomId };
}

export function resolveRoom(hs: Homeserver, idOrAlias: string): string {
  if (idOrAlias.startsWith("#")) {
    const a = hs.rooms.getAlias(idOrAlias);
    if (!a) throw notFound(`Room alias ${idOrAlias} not found`);
    return a.room_id;
  }
  if (!idOrAlias.startsWith("!")) throw new MatrixError(400, "M_INVALID_PARAM", "Not a room ID or alias");
  if (!hs.rooms.getRoom(idOrAlias)) throw notFound("No known servers");
  return idOrAlias;
}

/** Redacts `targetId` (own events always; others' with the redact power level). */
export function redact(
  hs: Homeserver,
  roomId: string,
  sender: string,
  targetId: string,
  reason: string | undefined,
  txn: { deviceId: string; txnId: string },
): StreamEvent {
  const room = hs.rooms.getRoom(roomId);
  if (!room) throw notFound("Unknown room");
  if (membershipOf(hs, roomId, sender) !== "join") throw forbidden(`User ${sender} not in room ${roomId}`);
  const target = hs.rooms.getEvent(targetId);
  const pl = roomPowerLevels(hs, roomId);
  const mayRedactOthers = userPower(pl, sender) >= pl.redact;
  if (target && target.event.room_id === roomId && target.event.sender !== sender && !mayRedactOthers) {
    throw forbidden("You don't have permission to redact events");
  }
  const content: JsonObject = reason !== undefined ? { reason } : {};
  if (room.room_version === "11") content.redacts = targetId;
  authorizeEvent(hs, roomId, sender, "m.room.redaction", content, undefined);
  return hs.tx(() => {
    const red = hs.appendEvent(roomId, sender, "m.room.redaction", content, {
      txn,
      extra: { redacts: targetId },
    });
    if (target && target.event.room_id === roomId && !target.event.unsigned?.redacted_because) {
      hs.rooms.replaceEventJson(redactEvent(target.event, room.room_version, red.event));
    }
    return red;
  });
}

const UPGRADE_COPIED_STATE = [
  "m.room.server_acl",
  "m.room.encryption",
  "m.room.name",
  "m.room.avatar",
  "m.room.topic",
  "m.room.guest_access",
  "m.room.history_visibility",
  "m.room.join_rules",
  "m.room.power_levels",
];

/** Replaces a room: new room with copied state and a predecessor link, tombstone in the old one. */
export function upgradeRoom(hs: Homeserver, oldRoomId: string, sender: string, newVersion: string): string {
  if (!isRoomVersion(newVersion)) {
    throw new MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", `Room version ${newVersion} is not supported`);
  }
  if (!hs.rooms.getRoom(oldRoomId)) throw notFound("Unknown room");
  // Checks the sender could send the tombstone before changing anything.
  authorizeEvent(hs, oldRoomId, sender, "m.room.tombstone", { body: "", replacement_room: "" }, "");
  const lastEvent = hs.rooms.eventsBefore(oldRoomId, hs.stream.current, 0, 1)[0];
  const newRoomId = `!${randomId(18)}:${hs.serverName}`;
  hs.tx(() => {
    hs.rooms.createRoom(newRoomId, newVersion, sender);
    const create: JsonObject = {
      room_version: newVersion,
      predecessor: { room_id: oldRoomId, ...(lastEvent ? { event_id: lastEvent.event.event_id } : {}) },
    };
    if (newVersion === "10") create.creator = sender;
    hs.appendEvent(newRoomId, sender, "m.room.create", create, { stateKey: "" });
    hs.appendEvent(newRoomId, sender, "m.room.member", memberContent(hs, sender, "join"), {
      stateKey: sender,
    });
    for (const type of UPGRADE_COPIED_STATE) {
      const ev = hs.rooms.stateEvent(oldRoomId, type, "");
      if (ev) hs.appendEvent(newRoomId, sender, type, ev.content, { stateKey: "" });
    }
    for (const alias of hs.rooms.roomAliases(oldRoomId)) {
      hs.rooms.deleteAlias(alias);
      hs.rooms.putAlias(alias, newRoomId, sender);
    }
    const canonical = hs.rooms.stateEvent(oldRoomId, "m.room.canonical_alias", "");
    if (canonical)
      hs.appendEvent(newRoomId, sender, "m.room.canonical_alias", canonical.content, { stateKey: "" });
    hs.appendEvent(
      oldRoomId,
      sender,
      "m.room.tombstone",
      { body: "This room has been replaced", replacement_room: newRoomId },
      { stateKey: "" },
    );
    // Keep ordinary members from talking in the old room, as Synapse does.
    const plEvent = hs.rooms.stateEvent(oldRoomId, "m.room.power_levels", "");
    const pl = roomPowerLevels(hs, oldRoomId);
    const restricted = Math.max(50, pl.users_default + 1);
    hs.appendEvent(
      oldRoomId,
      sender,
      "m.room.power_levels",
      { ...(plEvent?.content ?? {}), events_default: restricted, invite: restricted },
      { stateKey: "" },
    );
  });
  return newRoomId;
}

/** The value a state entry had at stream position `pos` (inclusive), from its history. */
function valueAt(history: StreamEvent[], pos: number, field: string): unknown {
  let value: unknown;
  for (const se of history) {
    if (se.pos > pos) break;
    value = se.event.content[field];
  }
  return value;
}

/**
 * History visibility (spec "Room history visibility"): which of a room's `events` `userId` may read.
 * `world_readable` events are visible to all; otherwise a user sees events from while they were
 * joined, from while invited under `invited`, and everything under `shared` while currently joined.
 * Left users see nothing after their leave.
 */
export function visibleEvents(
  hs: Homeserver,
  userId: string,
  roomId: string,
  events: StreamEvent[],
): StreamEvent[] {
  if (events.length === 0) return events;
  const current = hs.rooms.membership(roomId, userId);
  const members = hs.rooms.stateHistory(roomId, "m.room.member", userId);
  const visibility = hs.rooms.stateHistory(roomId, "m.room.history_visibility", "");
  return events.filter((se) => {
    const hv = valueAt(visibility, se.pos, "history_visibility") ?? "shared";
    if (hv === "world_readable") return true;
    if (!current) return false;
    if (current.membership !== "join" && se.pos > current.stream_ordering) return false;
    const m = valueAt(members, se.pos, "membership");
    if (m === "join") return true;
    if (hv === "invited" && m === "invite") return true;
    return hv === "shared" && current.membership === "join";
  });
}

/** Whether `userId` may read `ev` (see `visibleEvents`). */
export function canSeeEvent(hs: Homeserver, userId: string, ev: StreamEvent): boolean {
  return visibleEvents(hs, userId, ev.event.room_id, [ev]).length === 1;
}
