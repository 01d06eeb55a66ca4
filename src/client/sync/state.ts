// What sync has told the client so far: its rooms and the global account data. The sync handler
// writes here; the rest of the client reads (and a few calls update it before sync echoes them).
import type { BasicEvent, JsonObject, Membership } from "../../wire/index.ts";
import type { RoomSnapshot, SyncChanges, SyncSnapshot } from "../client-store/index.ts";
import { ClientError } from "../errors.ts";
import { PresenceCache } from "../presence.ts";
import type { RoomNameFormatter } from "../rooms/display-name.ts";
import { Room } from "../rooms/room.ts";

/**
 * Rooms the user left (or was banned or kicked from, or whose invitation they declined) kept
 * here and in the client store, at most: past it those left longest ago are forgotten locally
 * (as by `forgetRoom`, without telling the server). Anyone can invite the user to rooms, so
 * without a bound declined invitations would pile up for ever.
 */
export const MAX_LEFT_ROOMS = 1_000;

/**
 * Timeline events whose IDs are remembered as emitted, at most (the oldest forgotten first): an
 * event a later response or gap fill brings again is not emitted again. The spec warns that
 * `/messages` (which fills gaps) and `/sync` order events differently, so one may come from both.
 * A gap fill reads at most `MAX_GAP_FILL_EVENTS` per room; the events it may repeat are the last
 * ones emitted.
 */
export const MAX_EMITTED_EVENT_IDS = 10_000;

function isLeft(room: Room): boolean {
  return room.membership === "leave" || room.membership === "ban";
}

export class SyncedState {
  readonly rooms = new Map<string, Room>();
  /** The client's `roomNameFormatter`, handed to each room. */
  readonly #formatName: RoomNameFormatter | undefined;
  readonly accountData = new Map<string, BasicEvent>();
  /** Users' presence as sync last pushed it (in memory only: not in the client store). */
  readonly presence = new PresenceCache();
  /** The left rooms of `rooms`, in the order they were left (after a restart: the store's order). */
  readonly #left = new Set<string>();
  /** Rooms forgotten here whose removal from the client store is not saved yet. */
  readonly #unsavedForgets = new Set<string>();
  /**
   * Rooms whose state changed outside sync (their member list fetched from `/members`) and is not
   * saved yet: saved with the next sync response's changes, or by `SyncLoop.saveChangedRooms`.
   */
  readonly #unsavedRooms = new Set<string>();
  /** The IDs of the timeline events emitted lately, oldest first (`MAX_EMITTED_EVENT_IDS`). */
  readonly #emitted = new Set<string>();

  constructor(formatName?: RoomNameFormatter) {
    this.#formatName = formatName;
  }

  /** A new room (not kept here: the caller adds it), its display name worded by the client's formatter. */
  newRoom(roomId: string, membership?: Membership, ownUserId?: string): Room {
    return new Room(roomId, membership, ownUserId, this.#formatName);
  }

  /**
   * Starts over from a stored snapshot (or nothing). `userId`'s own membership events order the
   * left rooms by when they were left (stores keep no order of their own: IndexedDB reads rooms
   * back by ID), so past `MAX_LEFT_ROOMS` those left longest ago still go first after a restart.
   */
  reset(snapshot?: SyncSnapshot, userId?: string): void {
    this.rooms.clear();
    this.accountData.clear();
    this.presence.clear();
    this.#left.clear();
    this.#unsavedForgets.clear();
    this.#unsavedRooms.clear();
    this.#emitted.clear();
    const left: { roomId: string; at: number }[] = [];
    for (const snap of snapshot?.rooms ?? []) {
      const room = Room.fromSnapshot(snap, userId, this.#formatName);
      this.rooms.set(snap.roomId, room);
      if (!isLeft(room)) continue;
      const own = userId === undefined ? undefined : room.getState("m.room.member", userId);
      left.push({ roomId: room.roomId, at: own?.origin_server_ts ?? 0 });
    }
    left.sort((a, b) => a.at - b.at); // stable: rooms left at the same time keep the store's order
    for (const { roomId } of left) this.#left.add(roomId);
    for (const ev of snapshot?.accountData ?? []) this.accountData.set(ev.type, ev);
  }

  /**
   * Notes `rooms`' memberships after a sync response changed them, and forgets the rooms left
   * longest ago past `MAX_LEFT_ROOMS`; returns those.
   */
  noteMemberships(rooms: Iterable<Room>): string[] {
    for (const room of rooms) {
      // Forgotten while the response was handled (`forgetRoom` meanwhile): stays forgotten.
      if (this.rooms.get(room.roomId) !== room) continue;
      this.#unsavedForgets.delete(room.roomId); // back (e.g. invited again): saved as it is now
      if (!isLeft(room)) this.#left.delete(room.roomId);
      else if (!this.#left.has(room.roomId)) this.#left.add(room.roomId);
    }
    const forgotten: string[] = [];
    for (const roomId of this.#left) {
      if (this.#left.size <= MAX_LEFT_ROOMS) break;
      this.forget(roomId);
      forgotten.push(roomId);
    }
    return forgotten;
  }

  /** Whether the timeline event `eventId` was emitted lately. */
  emittedLately(eventId: string): boolean {
    return this.#emitted.has(eventId);
  }

  /**
   * Records that the timeline event `eventId` is emitted; false when it was emitted lately (it is
   * then not emitted again).
   */
  firstEmission(eventId: string): boolean {
    if (this.#emitted.has(eventId)) return false;
    this.#emitted.add(eventId);
    if (this.#emitted.size > MAX_EMITTED_EVENT_IDS) {
      for (const id of this.#emitted) {
        this.#emitted.delete(id);
        break;
      }
    }
    return true;
  }

  /** Drops a room here; the next save removes it from the store. False if it was not known. */
  forget(roomId: string): boolean {
    this.#left.delete(roomId);
    this.#unsavedRooms.delete(roomId);
    if (!this.rooms.delete(roomId)) return false;
    this.#unsavedForgets.add(roomId);
    return true;
  }

  /**
   * `changes` as they may be saved now: the snapshots of rooms forgotten since they were taken
   * left out, the rooms forgotten and not yet removed from the store added.
   */
  toSave(changes: SyncChanges): SyncChanges {
    const forgotten = [...this.#unsavedForgets].filter((id) => !this.rooms.has(id));
    const rooms = changes.rooms.filter((r) => this.rooms.has(r.roomId));
    if (forgotten.length === 0 && rooms.length === changes.rooms.length) return changes;
    return { ...changes, rooms, ...(forgotten.length > 0 ? { forgotten } : {}) };
  }

  /** A save that removed `changes.forgotten` from the store succeeded. */
  saved(changes: SyncChanges): void {
    for (const id of changes.forgotten ?? []) this.#unsavedForgets.delete(id);
  }

  /**
   * `room`'s state changed outside sync (members fetched): its snapshot is to be saved. Ignored
   * for a room not (or no longer) kept here, such as one built for a send before the first sync.
   */
  changedOutsideSync(room: Room): void {
    if (this.rooms.get(room.roomId) === room) this.#unsavedRooms.add(room.roomId);
  }

  /** Whether rooms changed outside sync are not saved yet. */
  get hasUnsavedRooms(): boolean {
    return this.#unsavedRooms.size > 0;
  }

  /**
   * The snapshots of the rooms changed outside sync, taken now, those not in `except` (whose
   * snapshots the caller has); they count as saved from here (a failed save keeps them for the next).
   */
  takeUnsavedRooms(except?: ReadonlySet<string>): RoomSnapshot[] {
    const out: RoomSnapshot[] = [];
    for (const roomId of this.#unsavedRooms) {
      const room = this.rooms.get(roomId);
      if (room !== undefined && !except?.has(roomId)) out.push(room.toSnapshot());
    }
    this.#unsavedRooms.clear();
    return out;
  }

  /** Whether rooms were forgotten here whose removal from the store is not saved yet. */
  get hasUnsavedForgets(): boolean {
    for (const id of this.#unsavedForgets) if (!this.rooms.has(id)) return true;
    return false;
  }

  room(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }

  /** A known room that sync says is encrypted; throws `INVALID_ARGUMENT` otherwise. */
  encryptedRoom(roomId: string): Room {
    const room = this.rooms.get(roomId);
    if (!room?.encrypted) throw new ClientError("INVALID_ARGUMENT", "not a known encrypted room");
    return room;
  }

  /** Rooms known from sync, optionally only those with the given membership. */
  roomList(membership?: Room["membership"]): Room[] {
    const all = [...this.rooms.values()];
    return membership ? all.filter((r) => r.membership === membership) : all;
  }

  accountDataContent(type: string): JsonObject | undefined {
    return this.accountData.get(type)?.content;
  }
}
