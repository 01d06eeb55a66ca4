// Authorisation of new events against the room's current state: membership rules and power levels,
// the checks clients rely on (single authoritative server, so no state resolution).
import { forbidden, MatrixError } from "./errors.ts";
import type { Homeserver } from "./homeserver.ts";
import type { JsonObject, Membership } from "./types.ts";

export interface PowerLevels {
  users: Record<string, number>;
  users_default: number;
  events: Record<string, number>;
  events_default: number;
  state_default: number;
  ban: number;
  kick: number;
  invite: number;
  redact: number;
}

const num = (v: unknown, d: number): number => (typeof v === "number" && Number.isInteger(v) ? v : d);

function numMap(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (v && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) if (typeof x === "number" && Number.isInteger(x)) out[k] = x;
  }
  return out;
}

export function parsePowerLevels(content: JsonObject | undefined, creator: string): PowerLevels {
  if (!content) {
    // No power_levels event: the creator has 100, everyone else 0 (spec auth rules).
    return {
      users: { [creator]: 100 },
      users_default: 0,
      events: {},
      events_default: 0,
      state_default: 0,
      ban: 50,
      kick: 50,
      invite: 0,
      redact: 50,
    };
  }
  return {
    users: numMap(content.users),
    users_default: num(content.users_default, 0),
    events: numMap(content.events),
    events_default: num(content.events_default, 0),
    state_default: num(content.state_default, 50),
    ban: num(content.ban, 50),
    kick: num(content.kick, 50),
    invite: num(content.invite, 0),
    redact: num(content.redact, 50),
  };
}

export function roomPowerLevels(hs: Homeserver, roomId: string): PowerLevels {
  const room = hs.rooms.getRoom(roomId);
  return parsePowerLevels(
    hs.rooms.stateEvent(roomId, "m.room.power_levels", "")?.content,
    room?.creator ?? "",
  );
}

export function userPower(pl: PowerLevels, userId: string): number {
  return pl.users[userId] ?? pl.users_default;
}

export function requiredPower(pl: PowerLevels, type: string, isState: boolean): number {
  return pl.events[type] ?? (isState ? pl.state_default : pl.events_default);
}

export function membershipOf(hs: Homeserver, roomId: string, userId: string): Membership | undefined {
  return hs.rooms.membership(roomId, userId)?.membership;
}

/** Throws 403 M_FORBIDDEN when `sender` may not send this event now. */
export function authorizeEvent(
  hs: Homeserver,
  roomId: string,
  sender: string,
  type: string,
  content: JsonObject,
  stateKey: string | undefined,
): void {
  if (!hs.rooms.getRoom(roomId)) throw new MatrixError(404, "M_NOT_FOUND", "Unknown room");
  if (type === "m.room.create") throw forbidden("m.room.create can only be sent when creating a room");
  const pl = roomPowerLevels(hs, roomId);
  if (type === "m.room.member") {
    if (stateKey === undefined) throw forbidden("m.room.member needs a state key");
    authorizeMembership(hs, roomId, sender, stateKey, content, pl);
    return;
  }
  if (membershipOf(hs, roomId, sender) !== "join") throw forbidden(`User ${sender} not in room ${roomId}`);
  if (stateKey?.startsWith("@") && stateKey !== sender) {
    throw forbidden("State keys starting with @ are reserved for that user");
  }
  const own = userPower(pl, sender);
  if (own < requiredPower(pl, type, stateKey !== undefined)) {
    throw forbidden(`You don't have permission to send ${type} events`);
  }
  if (type === "m.room.power_levels")
    checkPowerLevelChange(pl, parsePowerLevels(content, ""), content, sender, own);
}

function authorizeMembership(
  hs: Homeserver,
  roomId: string,
  sender: string,
  target: string,
  content: JsonObject,
  pl: PowerLevels,
): void {
  const membership = content.membership;
  const senderM = membershipOf(hs, roomId, sender);
  const targetM = membershipOf(hs, roomId, target);
  const senderPower = userPower(pl, sender);
  const targetPower = userPower(pl, target);
  switch (membership) {
    case "join": {
      if (sender !== target) throw forbidden("Cannot force another user to join");
      if (targetM === "ban") throw forbidden("You are banned from this room");
      if (targetM === "join" || targetM === "invite") return;
      const rules = hs.rooms.stateEvent(roomId, "m.room.join_rules", "")?.content;
      const rule = rules?.join_rule;
      if (rule === "public") return;
      if ((rule === "restricted" || rule === "knock_restricted") && Array.isArray(rules?.allow)) {
        for (const a of rules.allow as JsonObject[]) {
          if (a?.type === "m.room_membership" && typeof a.room_id === "string") {
            if (membershipOf(hs, a.room_id, sender) === "join") return;
          }
        }
      }
      throw forbidden("You are not invited to this room.");
    }
    case "invite": {
      if (senderM !== "join") throw forbidden(`${sender} not in room`);
      if (targetM === "join") throw forbidden(`${target} is already in the room.`);
      if (targetM === "ban") throw forbidden(`${target} is banned from the room`);
      if (senderPower < pl.invite) throw forbidden("You don't have permission to invite users");
      return;
    }
    case "leave": {
      if (sender === target) {
        if (targetM === "join" || targetM === "invite" || targetM === "knock") return;
        throw forbidden(targetM === "ban" ? "You are banned from this room" : "You are not in this room");
      }
      if (senderM !== "join") throw forbidden(`${sender} not in room`);
      if (targetM === "ban") {
        if (senderPower < pl.ban) throw forbidden("You don't have permission to unban");
        return;
      }
      if (targetM !== "join" && targetM !== "invite" && targetM !== "knock") {
        throw forbidden(`${target} is not in the room`);
      }
      if (senderPower < pl.kick || senderPower <= targetPower)
        throw forbidden("You don't have permission to kick");
      return;
    }
    case "ban": {
      if (senderM !== "join") throw forbidden(`${sender} not in room`);
      if (senderPower < pl.ban || (sender !== target && senderPower <= targetPower)) {
        throw forbidden("You don't have permission to ban");
      }
      return;
    }
    default:
      throw forbidden(`Membership ${String(membership)} is not allowed here`);
  }
}

/**
 * Room v10 auth rules: `users` and `events` are objects of integers (`users` keyed by user IDs).
 * Anything else was read as "no levels", a view of the room clients do not share: 400 M_BAD_JSON.
 */
export function checkPowerLevelsShape(raw: JsonObject): void {
  for (const k of ["users", "events"] as const) {
    const v = raw[k];
    if (v === undefined) continue;
    const ok =
      typeof v === "object" &&
      v !== null &&
      !Array.isArray(v) &&
      Object.entries(v).every(
        ([key, x]) => Number.isInteger(x) && (k === "events" || /^@[^:]+:.+$/.test(key)),
      );
    if (!ok) {
      throw new MatrixError(
        400,
        "M_BAD_JSON",
        `${k} must map ${k === "users" ? "user IDs" : "event types"} to integers`,
      );
    }
  }
}

function checkPowerLevelChange(
  old: PowerLevels,
  next: PowerLevels,
  raw: JsonObject,
  sender: string,
  own: number,
): void {
  for (const k of [
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "kick",
    "invite",
    "redact",
  ] as const) {
    if (raw[k] !== undefined && (typeof raw[k] !== "number" || !Number.isInteger(raw[k]))) {
      throw new MatrixError(400, "M_BAD_JSON", `${k} must be an integer`);
    }
    if (old[k] !== next[k] && (old[k] > own || next[k] > own)) {
      throw forbidden(`You cannot change ${k} beyond your own power level`);
    }
  }
  checkPowerLevelsShape(raw);
  for (const t of new Set([...Object.keys(old.events), ...Object.keys(next.events)])) {
    const a = old.events[t];
    const b = next.events[t];
    if (a !== b && ((a ?? 0) > own || (b ?? 0) > own)) throw forbidden(`You cannot change the level of ${t}`);
  }
  for (const u of new Set([...Object.keys(old.users), ...Object.keys(next.users)])) {
    const a = old.users[u];
    const b = next.users[u];
    if (a === b) continue;
    if (u !== sender && a !== undefined && a >= own) throw forbidden(`You cannot change the level of ${u}`);
    if (b !== undefined && b > own) throw forbidden("You cannot raise a user above your own level");
  }
}
