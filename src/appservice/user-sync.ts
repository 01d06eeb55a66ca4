// One virtual user's share of a transaction, shaped as a sync response for its client: events of
// the rooms it is in (and its own membership changes, invites with their stripped state),
// ephemeral events of those rooms, the to-device messages addressed to its device, the device
// lists, and its device's key counts. The client then handles it like any sync (E2EE included).
import type { JsonObject, Membership, StrippedStateEvent } from "../wire/index.ts";
import { isIdentifier, isRecord } from "../wire/json.ts";
import type { Transaction } from "./transaction.ts";

export interface VirtualUserView {
  readonly userId: string;
  readonly deviceId: string;
  /** The user's membership in a room as its client knows it. */
  membership(roomId: string): Membership | undefined;
}

/** Key data last received for a device: MSC3202 leaves out devices whose counts did not change. */
export interface KnownKeyCounts {
  oneTimeKeyCounts?: Record<string, number>;
  unusedFallbackKeyTypes?: string[];
}

export interface UserSync {
  /** Raw sync response (validated by the caller with the client's sync schema). */
  response: JsonObject;
  /** Rooms the user joined in this transaction: their state is fetched before the response is fed. */
  joined: string[];
}

interface JoinSection {
  timeline: { events: JsonObject[] };
  ephemeral: { events: JsonObject[] };
  state?: { events: JsonObject[] };
}

/** The user's sync response for `txn`, or undefined when nothing in it concerns the user. */
export function userSyncFor(
  view: VirtualUserView,
  txn: Transaction,
  nextBatch: string,
  known: KnownKeyCounts,
): UserSync | undefined {
  // Keyed by room IDs from the homeserver: no prototype, so "toString" or "__proto__" is a key like
  // any other (on `{}` it found Object.prototype's members and failed the user's share every time).
  const join: Record<string, JoinSection> = Object.create(null);
  const invite: Record<string, { invite_state: { events: JsonObject[] } }> = Object.create(null);
  const leave: Record<string, { timeline: { events: JsonObject[] } }> = Object.create(null);
  const membership = new Map<string, string | undefined>();
  const joined: string[] = [];
  const current = (roomId: string): string | undefined =>
    membership.has(roomId) ? membership.get(roomId) : view.membership(roomId);
  const joinSection = (roomId: string): JoinSection => {
    let s = join[roomId];
    if (!s) {
      s = { timeline: { events: [] }, ephemeral: { events: [] } };
      join[roomId] = s;
    }
    return s;
  };
  let relevant = false;

  for (const ev of txn.events) {
    const roomId = ev.room_id;
    // A room ID the stores could not keep (empty, overlong, a lone surrogate) is dropped, as a sync
    // drops such a room: a join to it would fetch its state by a path no URL can carry.
    if (!isIdentifier(roomId)) continue;
    const own = ev.type === "m.room.member" && ev.state_key === view.userId;
    if (own) {
      const m = typeof ev.content.membership === "string" ? ev.content.membership : undefined;
      const before = current(roomId);
      membership.set(roomId, m);
      relevant = true;
      if (m === "invite") {
        const stripped = ev.unsigned?.invite_room_state;
        const state = Array.isArray(stripped) ? (stripped as StrippedStateEvent[]) : [];
        invite[roomId] = {
          invite_state: {
            events: [
              ...state,
              { type: ev.type, state_key: ev.state_key, sender: ev.sender, content: ev.content },
            ],
          },
        };
        continue;
      }
      if (m === "join") {
        if (before !== "join") joined.push(roomId);
        delete leave[roomId];
        joinSection(roomId).timeline.events.push(ev);
        continue;
      }
      // Leave, ban or knock: the room moves to the leave section with the event that ended it.
      delete join[roomId];
      leave[roomId] = { timeline: { events: [ev] } };
      continue;
    }
    if (current(roomId) === "join") {
      joinSection(roomId).timeline.events.push(ev);
      relevant = true;
    }
  }
  for (const ev of txn.ephemeral) {
    if (!isIdentifier(ev.room_id) || current(ev.room_id) !== "join") continue;
    const content = ev.type === "m.receipt" ? ownPrivateReceiptsOnly(ev.content, view.userId) : ev.content;
    if (content === undefined) continue;
    joinSection(ev.room_id).ephemeral.events.push({ type: ev.type, content });
    relevant = true;
  }
  const toDevice: JsonObject[] = [];
  for (const m of txn.toDevice) {
    if (m.to_user_id !== view.userId || m.to_device_id !== view.deviceId) continue;
    const { to_user_id: _u, to_device_id: _d, ...event } = m;
    toDevice.push(event);
  }
  if (toDevice.length > 0) relevant = true;
  const counts = txn.oneTimeKeyCounts[view.userId]?.[view.deviceId];
  const fallback = txn.unusedFallbackKeyTypes[view.userId]?.[view.deviceId];
  if (counts !== undefined) {
    known.oneTimeKeyCounts = counts;
    relevant = true;
  }
  if (fallback !== undefined) {
    known.unusedFallbackKeyTypes = fallback;
    relevant = true;
  }
  if (txn.deviceLists && (txn.deviceLists.changed.length > 0 || txn.deviceLists.left.length > 0))
    relevant = true;
  if (!relevant) return undefined;

  const response: JsonObject = {
    next_batch: nextBatch,
    rooms: { join, invite, leave },
    to_device: { events: toDevice },
    ...(txn.deviceLists ? { device_lists: txn.deviceLists } : {}),
    // Left out by the homeserver when unchanged: the last known values still hold.
    ...(known.oneTimeKeyCounts ? { device_one_time_keys_count: known.oneTimeKeyCounts } : {}),
    ...(known.unusedFallbackKeyTypes
      ? { device_unused_fallback_key_types: known.unusedFallbackKeyTypes }
      : {}),
  };
  return { response, joined };
}

/** Private read receipt type: a sync shows one only to the user who sent it. */
const PRIVATE_RECEIPT = "m.read.private";

/**
 * An `m.receipt` content without other users' private read receipts (the transaction carries those
 * of every user of the namespace), or undefined when nothing is left.
 */
function ownPrivateReceiptsOnly(content: JsonObject, userId: string): JsonObject | undefined {
  // Keyed by event IDs from the homeserver: no prototype, so "__proto__" is a key like any other.
  const out: JsonObject = Object.create(null);
  for (const [eventId, byType] of Object.entries(content)) {
    if (!isRecord(byType)) continue;
    const kept: JsonObject = Object.create(null);
    for (const [type, byUser] of Object.entries(byType)) {
      if (type !== PRIVATE_RECEIPT) {
        kept[type] = byUser;
      } else if (isRecord(byUser) && Object.hasOwn(byUser, userId)) {
        kept[type] = { [userId]: byUser[userId] as JsonObject[string] };
      }
    }
    if (Object.keys(kept).length > 0) out[eventId] = kept;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
