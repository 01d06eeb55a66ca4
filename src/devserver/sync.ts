// Builds /sync responses. Positions come from the one server stream; a sync token carries
// `s<stream>_<to-device acked up to>_<typing serial>` and is opaque to clients.
import { MatrixError } from "./errors.ts";
import type { Homeserver } from "./homeserver.ts";
import { visibleEvents } from "./room-ops.ts";
import type { ReceiptRow } from "./storage/index.ts";
import { type Authed, type JsonObject, type RoomEvent, type StreamEvent, slot } from "./types.ts";

/** Most to-device messages handed out in one sync response; the rest wait for the next one. */
export const MAX_TO_DEVICE_PER_SYNC = 100;
/** Upper bound on `room.timeline.limit` in a filter. */
export const MAX_TIMELINE_LIMIT = 500;
export const DEFAULT_TIMELINE_LIMIT = 10;

export interface SyncToken {
  pos: number;
  toDevice: number;
  typing: number;
}

export interface SyncFilter {
  timelineLimit: number;
  lazyLoadMembers: boolean;
  includeLeave: boolean;
}

export function formatToken(t: SyncToken): string {
  return `s${t.pos}_${t.toDevice}_${t.typing}`;
}

export function parseToken(s: string): SyncToken {
  const m = /^s(\d{1,15})_(\d{1,15})_(\d{1,15})$/.exec(s);
  if (!m) throw new MatrixError(400, "M_INVALID_PARAM", "Invalid sync token");
  return { pos: Number(m[1]), toDevice: Number(m[2]), typing: Number(m[3]) };
}

/** The event as one viewer sees it: `age`, and `transaction_id` only for the device that sent it. */
export function clientEvent(viewer: Authed, se: StreamEvent, now = Date.now()): RoomEvent {
  const ev = se.event;
  const unsigned: JsonObject = { ...(ev.unsigned ?? {}), age: Math.max(0, now - ev.origin_server_ts) };
  if (se.txnId !== null && se.txnDevice === viewer.deviceId && ev.sender === viewer.userId) {
    unsigned.transaction_id = se.txnId;
  }
  return { ...ev, unsigned };
}

export function strippedState(ev: RoomEvent): JsonObject {
  return { type: ev.type, state_key: ev.state_key, content: ev.content, sender: ev.sender };
}

const INVITE_STATE_TYPES = [
  "m.room.create",
  "m.room.join_rules",
  "m.room.name",
  "m.room.avatar",
  "m.room.canonical_alias",
  "m.room.encryption",
  "m.room.topic",
];

export function inviteState(hs: Homeserver, roomId: string, userId: string): JsonObject[] {
  const out: JsonObject[] = [];
  for (const t of INVITE_STATE_TYPES) {
    const ev = hs.rooms.stateEvent(roomId, t, "");
    if (ev) out.push(strippedState(ev));
  }
  const member = hs.rooms.stateEvent(roomId, "m.room.member", userId);
  if (member) out.push(strippedState(member));
  const inviter = member ? hs.rooms.stateEvent(roomId, "m.room.member", member.sender) : undefined;
  if (inviter && inviter.state_key !== userId) out.push(strippedState(inviter));
  return out;
}

interface Built {
  body: JsonObject;
  empty: boolean;
}

export function receiptContent(rows: ReceiptRow[]): JsonObject {
  const content: Record<string, Record<string, Record<string, JsonObject>>> = {};
  for (const r of rows) {
    const byType = slot(content, r.event_id, () => ({}));
    const byUser = slot(byType, r.receipt_type, () => ({}));
    byUser[r.user_id] = r.thread_id === "" ? { ts: r.ts } : { ts: r.ts, thread_id: r.thread_id };
  }
  return content;
}

function roomSummary(hs: Homeserver, roomId: string, userId: string): JsonObject {
  const members = hs.rooms.members(roomId);
  const joined = members.filter((m) => m.membership === "join");
  const invited = members.filter((m) => m.membership === "invite");
  const heroes = [...joined, ...invited]
    .map((m) => m.user_id)
    .filter((u) => u !== userId)
    .sort()
    .slice(0, 5);
  return {
    "m.heroes": heroes,
    "m.joined_member_count": joined.length,
    "m.invited_member_count": invited.length,
  };
}

/** Users sharing a joined room with `userId` at stream position `pos`. */
function sharingAt(hs: Homeserver, userId: string, pos: number): Set<string> {
  const out = new Set<string>();
  for (const m of hs.rooms.roomsForUser(userId)) {
    const mine = hs.rooms.stateEventAt(m.room_id, "m.room.member", userId, pos);
    if (mine?.content.membership !== "join") continue;
    for (const se of hs.rooms.stateAt(m.room_id, pos)) {
      const e = se.event;
      if (e.type === "m.room.member" && e.content.membership === "join" && e.state_key) out.add(e.state_key);
    }
  }
  return out;
}

/**
 * `device_lists` between two positions: users sharing a room with `userId` whose devices or keys
 * changed, users who newly share a room (changed) and users who no longer share any (left).
 */
export function deviceListsBetween(
  hs: Homeserver,
  userId: string,
  since: number,
  now: number,
): { changed: string[]; left: string[] } {
  const keyChanges = hs.keys.deviceListChangesBetween(since, now, userId);
  const memberRooms = hs.rooms.roomsWithMemberEventsBetween(since, now);
  if (keyChanges.length === 0 && memberRooms.length === 0) return { changed: [], left: [] };
  const sharingNow = hs.rooms.usersSharingRoomWith(userId);
  sharingNow.add(userId);
  const changed = new Set<string>();
  for (const c of keyChanges) if (c.only || sharingNow.has(c.userId)) changed.add(c.userId);
  const left = new Set<string>();
  const myRooms = new Set(hs.rooms.roomsForUser(userId).map((m) => m.room_id));
  if (memberRooms.some((r) => myRooms.has(r))) {
    const sharingThen = sharingAt(hs, userId, since);
    sharingThen.add(userId);
    for (const u of sharingNow) if (!sharingThen.has(u)) changed.add(u);
    for (const u of sharingThen) if (!sharingNow.has(u)) left.add(u);
  }
  return { changed: [...changed].sort(), left: [...left].sort() };
}

export function buildSync(
  hs: Homeserver,
  auth: Authed,
  since: SyncToken | undefined,
  filter: SyncFilter,
  fullState: boolean,
): Built {
  const { userId, deviceId } = auth;
  const now = hs.stream.current;
  const wallNow = Date.now();
  const from = since?.pos ?? 0;
  const ce = (se: StreamEvent): RoomEvent => clientEvent(auth, se, wallNow);
  let empty = true;

  // Account data, split into global and per-room.
  const globalAccountData: JsonObject[] = [];
  const roomAccountData = new Map<string, JsonObject[]>();
  for (const row of hs.misc.accountDataBetween(userId, from, now)) {
    const ev = { type: row.type, content: JSON.parse(row.content) as JsonObject };
    if (row.room_id === "") globalAccountData.push(ev);
    else {
      const list = roomAccountData.get(row.room_id) ?? [];
      list.push(ev);
      roomAccountData.set(row.room_id, list);
    }
  }
  if (globalAccountData.length > 0) empty = false;

  const join: Record<string, JsonObject> = {};
  const invite: Record<string, JsonObject> = {};
  const leave: Record<string, JsonObject> = {};
  const changedRooms = since ? hs.rooms.roomsChangedBetween(from, now) : new Set<string>();

  for (const m of hs.rooms.roomsForUser(userId)) {
    const roomId = m.room_id;
    // Unchanged since the token: the membership then is the membership now (saves a query per room).
    const sinceMembership = !since
      ? undefined
      : m.stream_ordering <= from
        ? m.membership
        : hs.rooms.stateEventAt(roomId, "m.room.member", userId, from)?.content.membership;
    if (m.membership === "join") {
      const full = !since || fullState || sinceMembership !== "join";
      const quiet = !full && !changedRooms.has(roomId);
      const room = joinedRoom(hs, auth, roomId, full, quiet, from, now, filter, since, ce);
      const ad = roomAccountData.get(roomId);
      if (ad) room.account_data = { events: ad };
      const hasContent =
        full ||
        changedRooms.has(roomId) ||
        ad !== undefined ||
        (room.ephemeral as { events: unknown[] }).events.length > 0;
      if (hasContent) {
        // Counted only for the rooms sent; no push rules here, so nothing is a highlight.
        const unread = hs.misc.unreadMessages(roomId, userId, m.stream_ordering, now);
        room.unread_notifications = { notification_count: unread, highlight_count: 0 };
        join[roomId] = room;
        if (since) empty = false;
      }
    } else if (m.membership === "invite") {
      if (!since || m.stream_ordering > from) {
        invite[roomId] = { invite_state: { events: inviteState(hs, roomId, userId) } };
        empty = false;
      }
    } else if (m.forgotten === 0 && (since ? m.stream_ordering > from : filter.includeLeave || fullState)) {
      if (!since && !filter.includeLeave) continue;
      // Timeline up to the moment the user left; nothing after. Someone who was only invited sees
      // just the event that ended it, and no room state.
      const wasJoined = sinceMembership === "join";
      const floor = since && wasJoined ? from : m.stream_ordering - 1;
      const evs = hs.rooms.eventsBefore(roomId, m.stream_ordering, floor, filter.timelineLimit + 1);
      const limited = evs.length > filter.timelineLimit;
      const timeline = evs.slice(0, filter.timelineLimit).reverse();
      const first = timeline[0]?.pos ?? m.stream_ordering;
      const leaveEvent = timeline[timeline.length - 1]?.event;
      const prevMembership = (leaveEvent?.unsigned?.prev_content as JsonObject | undefined)?.membership;
      let state: StreamEvent[] = [];
      if (since && wasJoined && limited)
        state = hs.rooms.stateAt(roomId, first - 1).filter((se) => se.pos > from);
      else if (!since && prevMembership === "join") state = hs.rooms.stateAt(roomId, first - 1);
      leave[roomId] = {
        timeline: { events: timeline.map(ce), limited, prev_batch: `t${first - 1}` },
        state: { events: state.map(ce) },
        account_data: { events: roomAccountData.get(roomId) ?? [] },
      };
      empty = false;
    }
  }

  // To-device: drop what the client acknowledged by sending this token, hand out the rest in order.
  let toDevicePos = now;
  const toDevice: JsonObject[] = [];
  if (since) hs.ackToDevice(userId, deviceId, since.toDevice);
  const pending = hs.keys.pendingToDevice(userId, deviceId, since?.toDevice ?? 0, MAX_TO_DEVICE_PER_SYNC);
  for (const p of pending) toDevice.push(JSON.parse(p.json) as JsonObject);
  if (pending.length === MAX_TO_DEVICE_PER_SYNC) toDevicePos = pending[pending.length - 1]!.pos;
  if (toDevice.length > 0) empty = false;

  const body: JsonObject = {
    next_batch: formatToken({ pos: now, toDevice: toDevicePos, typing: hs.typing.serial }),
    rooms: { join, invite, leave, knock: {} },
    account_data: { events: globalAccountData },
    to_device: { events: toDevice },
    presence: { events: [] },
    device_one_time_keys_count: { signed_curve25519: 0, ...hs.keys.oneTimeKeyCounts(userId, deviceId) },
    device_unused_fallback_key_types: hs.keys.unusedFallbackTypes(userId, deviceId),
  };
  if (since) {
    const lists = deviceListsBetween(hs, userId, from, now);
    body.device_lists = lists;
    if (lists.changed.length > 0 || lists.left.length > 0) empty = false;
  }
  return { body, empty };
}

function joinedRoom(
  hs: Homeserver,
  auth: Authed,
  roomId: string,
  full: boolean,
  /** No events in the room since the token: only ephemeral data and account data can be new. */
  quiet: boolean,
  from: number,
  now: number,
  filter: SyncFilter,
  since: SyncToken | undefined,
  ce: (se: StreamEvent) => RoomEvent,
): JsonObject {
  const floor = full ? 0 : from;
  let newest = quiet ? [] : hs.rooms.eventsBefore(roomId, now, floor, filter.timelineLimit + 1);
  // A user who was joined for the whole window sees all of it; otherwise apply history visibility.
  // The timeline is the newest unbroken run of visible events: it stops at the first hidden one, so
  // that hidden state events (a history visibility change, `m.room.encryption`, the joiner's invite)
  // land in `state` below, as Synapse gives a joiner the full current state, instead of vanishing.
  let hidden = false;
  if (full) {
    const visible = new Set(visibleEvents(hs, auth.userId, roomId, newest));
    const cut = newest.findIndex((se) => !visible.has(se));
    if (cut >= 0) {
      newest = newest.slice(0, cut);
      hidden = true;
    }
  }
  const limited = hidden || newest.length > filter.timelineLimit;
  const timeline = newest.slice(0, filter.timelineLimit).reverse();
  const timelineStart = timeline[0]?.pos ?? now + 1;
  let state: StreamEvent[] = [];
  if (full) state = hs.rooms.stateAt(roomId, timelineStart - 1);
  else if (limited) state = hs.rooms.stateAt(roomId, timelineStart - 1).filter((se) => se.pos > from);
  if (filter.lazyLoadMembers) {
    const wanted = new Set(timeline.map((se) => se.event.sender));
    wanted.add(auth.userId);
    const kept = state.filter(
      (se) => se.event.type !== "m.room.member" || wanted.has(se.event.state_key ?? ""),
    );
    // Members of timeline senders the client may not have seen yet (incremental syncs).
    const have = new Set(
      kept.filter((se) => se.event.type === "m.room.member").map((se) => se.event.state_key),
    );
    const inTimeline = new Set(
      timeline.filter((se) => se.event.type === "m.room.member").map((se) => se.event.state_key),
    );
    for (const u of wanted) {
      if (have.has(u) || inTimeline.has(u)) continue;
      const before = hs.rooms.stateAt(roomId, timelineStart - 1);
      const me = before.find((se) => se.event.type === "m.room.member" && se.event.state_key === u);
      if (me) kept.push(me);
    }
    state = kept.sort((a, b) => a.pos - b.pos);
  }

  const ephemeral: JsonObject[] = [];
  const typing = hs.typing.changedSince(roomId, since?.typing ?? -1);
  if (typing && (since || typing.length > 0))
    ephemeral.push({ type: "m.typing", content: { user_ids: typing } });
  const receipts = hs.misc
    .receiptsBetween(roomId, full && !since ? 0 : from, now)
    .filter((r) => r.receipt_type !== "m.read.private" || r.user_id === auth.userId);
  if (receipts.length > 0) ephemeral.push({ type: "m.receipt", content: receiptContent(receipts) });

  const room: JsonObject = {
    timeline: { events: timeline.map(ce), limited, prev_batch: `t${timelineStart - 1}` },
    state: { events: state.map(ce) },
    ephemeral: { events: ephemeral },
    account_data: { events: [] },
  };
  if (full || timeline.some((se) => se.event.type === "m.room.member")) {
    room.summary = roomSummary(hs, roomId, auth.userId);
  }
  return room;
}
