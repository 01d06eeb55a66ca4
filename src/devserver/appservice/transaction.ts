// Builds one transaction for an application service from the server's stream: the room events it
// is interested in, and with its flags the MSC2409/MSC4203 ephemeral (typing, receipts) and to-device data and the
// MSC3202 device lists and key counts of its users' devices.
import {
  REG_MSC3202,
  REG_PUSH_EPHEMERAL_UNSTABLE,
  REG_RECEIVE_EPHEMERAL,
  TXN_DEVICE_LISTS,
  TXN_EPHEMERAL,
  TXN_EPHEMERAL_UNSTABLE,
  TXN_FALLBACK_KEYS,
  TXN_OTK_COUNTS,
  TXN_OTK_COUNTS_ALT,
  TXN_TO_DEVICE,
} from "../../wire/appservice.ts";
import type { Homeserver } from "../homeserver.ts";
import { deviceListsBetween, inviteState, receiptContent } from "../sync.ts";
import { type JsonObject, type RoomEvent, slot } from "../types.ts";
import type { Appservice, AppserviceRegistry } from "./registry.ts";

/** Most room events in one transaction; the rest go in the next one. */
export const MAX_EVENTS_PER_TXN = 100;
/** Most to-device messages per device in one transaction. */
export const MAX_TO_DEVICE_PER_TXN = 100;

export interface BuiltTransaction {
  body: JsonObject;
  /** The stream position the transaction covers up to. */
  upTo: number;
  /** To-device messages to drop once delivered: `[userId, deviceId, upToPos]`. */
  acks: [string, string, number][];
  /**
   * To-device messages sent and kept for the device's own sync (its user is in a namespace that is
   * not exclusive), by `userId|deviceId`: the position sent up to, to remember once delivered.
   */
  toDeviceSent: Map<string, number>;
  /** Key-count snapshots sent, by `userId|deviceId`, to remember once delivered. */
  keySnapshots: Map<string, string>;
  empty: boolean;
  /** The event limit cut it short: more of the stream is waiting. */
  more: boolean;
  /** The typing serial the transaction reports up to. */
  typingSerial: number;
}

export function buildTransaction(
  hs: Homeserver,
  registry: AppserviceRegistry,
  as: Appservice,
  from: number,
  /** Key-count snapshots the appservice already has (MSC3202 sends only changes). */
  sentKeys: ReadonlyMap<string, string>,
  /** Typing serial of the last transaction delivered (typing lives in memory, beside the stream). */
  typingSince: number,
  /** Positions of the to-device messages already delivered and kept (see `toDeviceSent`). */
  toDeviceSince: ReadonlyMap<string, number> = new Map(),
): BuiltTransaction {
  const now = hs.stream.current;
  const typingSerial = hs.typing.serial;
  const events = hs.rooms.allEventsAfter(from, now, MAX_EVENTS_PER_TXN);
  const upTo = events.length === MAX_EVENTS_PER_TXN ? events[events.length - 1]!.pos : now;
  const users = hs.accounts.userIds().filter((u) => registry.controls(as, u));
  const interest = new Map<string, boolean>();
  const roomInteresting = (roomId: string): boolean => {
    let v = interest.get(roomId);
    if (v === undefined) {
      v =
        as.ns.matchesRoom(roomId) ||
        hs.rooms.roomAliases(roomId).some((a) => as.ns.matchesAlias(a)) ||
        hs.rooms.members(roomId).some((m) => m.membership === "join" && registry.controls(as, m.user_id));
      interest.set(roomId, v);
    }
    return v;
  };
  const out: RoomEvent[] = [];
  for (const se of events) {
    const ev = se.event;
    const target = ev.type === "m.room.member" ? ev.state_key : undefined;
    const controlledTarget = target !== undefined && registry.controls(as, target);
    if (!registry.controls(as, ev.sender) && !controlledTarget && !roomInteresting(ev.room_id)) continue;
    const unsigned: JsonObject = {
      ...(ev.unsigned ?? {}),
      age: Math.max(0, Date.now() - ev.origin_server_ts),
    };
    // An invite to one of its users carries the room's stripped state, as in a sync's invite section.
    if (controlledTarget && ev.content.membership === "invite") {
      unsigned.invite_room_state = inviteState(hs, ev.room_id, target);
    }
    out.push({ ...ev, unsigned });
  }
  const body: JsonObject = { events: out };
  let empty = out.length === 0;

  const reg = as.reg;
  const ephemeralField = reg[REG_RECEIVE_EPHEMERAL]
    ? TXN_EPHEMERAL
    : reg[REG_PUSH_EPHEMERAL_UNSTABLE]
      ? TXN_EPHEMERAL_UNSTABLE
      : undefined;
  const acks: [string, string, number][] = [];
  const toDeviceSent = new Map<string, number>();
  if (ephemeralField !== undefined) {
    const ephemeral: JsonObject[] = [];
    // Rooms its users are in (as Synapse counts them: joined), not rooms they left or were invited to.
    const rooms = new Set(
      users.flatMap((u) =>
        hs.rooms
          .roomsForUser(u)
          .filter((m) => m.membership === "join")
          .map((m) => m.room_id),
      ),
    );
    for (const roomId of rooms) {
      const typing = hs.typing.changedSince(roomId, typingSince);
      if (typing) ephemeral.push({ type: "m.typing", room_id: roomId, content: { user_ids: typing } });
      // Private read receipts only of its own users (spec: MUST); public ones of everyone.
      const receipts = hs.misc
        .receiptsBetween(roomId, from, upTo)
        .filter((r) => r.receipt_type !== "m.read.private" || registry.controls(as, r.user_id));
      if (receipts.length > 0)
        ephemeral.push({ type: "m.receipt", room_id: roomId, content: receiptContent(receipts) });
    }
    const toDevice: JsonObject[] = [];
    for (const u of users) {
      // Only a user of its exclusive namespaces is the appservice's alone: another's messages are
      // also its devices' own (they sync), so they are kept for them (as Synapse does).
      const exclusive = u === as.sender || as.ns.matchesUser(u, true);
      for (const d of hs.accounts.listDevices(u)) {
        const key = `${u}|${d.device_id}`;
        const after = exclusive ? 0 : (toDeviceSince.get(key) ?? 0);
        const pending = hs.keys.pendingToDevice(u, d.device_id, after, MAX_TO_DEVICE_PER_TXN);
        for (const p of pending) {
          toDevice.push({ ...(JSON.parse(p.json) as JsonObject), to_user_id: u, to_device_id: d.device_id });
        }
        const last = pending[pending.length - 1];
        if (last && exclusive) acks.push([u, d.device_id, last.pos]);
        else if (last) toDeviceSent.set(key, last.pos);
      }
    }
    body[ephemeralField] = ephemeral;
    body[TXN_TO_DEVICE] = toDevice;
    if (ephemeral.length > 0 || toDevice.length > 0) empty = false;
  }

  const keySnapshots = new Map<string, string>();
  if (reg[REG_MSC3202]) {
    const changed = new Set<string>();
    const left = new Set<string>();
    for (const u of users) {
      const lists = deviceListsBetween(hs, u, from, upTo);
      for (const c of lists.changed) changed.add(c);
      for (const l of lists.left) left.add(l);
    }
    // Someone one of its users stopped sharing a room with may still share one with another.
    for (const c of changed) left.delete(c);
    if (changed.size > 0 || left.size > 0) {
      body[TXN_DEVICE_LISTS] = { changed: [...changed].sort(), left: [...left].sort() };
      empty = false;
    }
    const counts: Record<string, Record<string, Record<string, number>>> = {};
    const fallback: Record<string, Record<string, string[]>> = {};
    for (const u of users) {
      for (const d of hs.accounts.listDevices(u)) {
        const c = { signed_curve25519: 0, ...hs.keys.oneTimeKeyCounts(u, d.device_id) };
        const f = hs.keys.unusedFallbackTypes(u, d.device_id);
        const key = `${u}|${d.device_id}`;
        const snapshot = JSON.stringify([c, f]);
        if (sentKeys.get(key) === snapshot) continue;
        keySnapshots.set(key, snapshot);
        slot(counts, u, () => ({}))[d.device_id] = c;
        slot(fallback, u, () => ({}))[d.device_id] = f;
      }
    }
    if (keySnapshots.size > 0) {
      // Synapse sends both spellings of the counts field; so does the devserver.
      body[TXN_OTK_COUNTS] = counts;
      body[TXN_OTK_COUNTS_ALT] = counts;
      body[TXN_FALLBACK_KEYS] = fallback;
      empty = false;
    }
  }
  return { body, upTo, acks, toDeviceSent, keySnapshots, empty, more: upTo < now, typingSerial };
}
