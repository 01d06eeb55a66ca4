// Rooms, their events (one stream ordering per event), current state, memberships and aliases.
import type { Membership, RoomEvent, StreamEvent } from "../types.ts";
import type { Db } from "./db.ts";

interface EventRow {
  stream_ordering: number;
  json: string;
  txn_device: string | null;
  txn_id: string | null;
}

export interface RoomRow {
  room_id: string;
  room_version: string;
  creator: string;
  is_public: number;
}

export interface MembershipRow {
  room_id: string;
  user_id: string;
  membership: Membership;
  stream_ordering: number;
  forgotten: number;
}

const toStream = (r: EventRow): StreamEvent => ({
  pos: r.stream_ordering,
  event: JSON.parse(r.json) as RoomEvent,
  txnDevice: r.txn_device,
  txnId: r.txn_id,
});

export class RoomStore {
  private readonly s;
  constructor(db: Db) {
    const cols = "stream_ordering, json, txn_device, txn_id";
    this.s = {
      insertRoom: db.prepare("INSERT INTO rooms (room_id, room_version, creator) VALUES (?, ?, ?)"),
      getRoom: db.prepare("SELECT * FROM rooms WHERE room_id = ?"),
      setPublic: db.prepare("UPDATE rooms SET is_public = ? WHERE room_id = ?"),
      publicRooms: db.prepare("SELECT room_id FROM rooms WHERE is_public = 1 ORDER BY room_id"),
      insertEvent: db.prepare(
        `INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, json, txn_device, txn_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      setState: db.prepare(
        `INSERT INTO current_state (room_id, type, state_key, stream_ordering) VALUES (?, ?, ?, ?)
         ON CONFLICT (room_id, type, state_key) DO UPDATE SET stream_ordering = excluded.stream_ordering`,
      ),
      setMembership: db.prepare(
        `INSERT INTO memberships (room_id, user_id, membership, stream_ordering, forgotten) VALUES (?, ?, ?, ?, 0)
         ON CONFLICT (room_id, user_id) DO UPDATE SET membership = excluded.membership,
           stream_ordering = excluded.stream_ordering, forgotten = 0`,
      ),
      forget: db.prepare("UPDATE memberships SET forgotten = 1 WHERE room_id = ? AND user_id = ?"),
      getEvent: db.prepare(`SELECT ${cols} FROM events WHERE event_id = ?`),
      eventAt: db.prepare(`SELECT ${cols} FROM events WHERE stream_ordering = ?`),
      updateJson: db.prepare("UPDATE events SET json = ? WHERE event_id = ?"),
      currentState: db.prepare(
        `SELECT e.stream_ordering, e.json, e.txn_device, e.txn_id FROM current_state c
         JOIN events e ON e.stream_ordering = c.stream_ordering WHERE c.room_id = ? ORDER BY c.stream_ordering`,
      ),
      stateEvent: db.prepare(
        `SELECT e.stream_ordering, e.json, e.txn_device, e.txn_id FROM current_state c
         JOIN events e ON e.stream_ordering = c.stream_ordering
         WHERE c.room_id = ? AND c.type = ? AND c.state_key = ?`,
      ),
      // The latest state event per (type, state_key) at or before a stream position.
      stateAt: db.prepare(
        `SELECT e.stream_ordering, e.json, e.txn_device, e.txn_id FROM events e
         JOIN (SELECT MAX(stream_ordering) AS so FROM events
               WHERE room_id = ? AND state_key IS NOT NULL AND stream_ordering <= ?
               GROUP BY type, state_key) m ON m.so = e.stream_ordering
         ORDER BY e.stream_ordering`,
      ),
      stateEventAt: db.prepare(
        `SELECT ${cols} FROM events WHERE room_id = ? AND type = ? AND state_key = ? AND stream_ordering <= ?
         ORDER BY stream_ordering DESC LIMIT 1`,
      ),
      stateHistory: db.prepare(
        `SELECT ${cols} FROM events WHERE room_id = ? AND type = ? AND state_key = ? ORDER BY stream_ordering`,
      ),
      // Children of an event (m.relates_to.event_id), optionally of one rel_type and event type;
      // NULL parameters match anything. Newest first, below a stream position.
      relations: db.prepare(
        `SELECT ${cols} FROM events WHERE room_id = ?
           AND json_extract(json, '$.content."m.relates_to".event_id') = ?
           AND (? IS NULL OR json_extract(json, '$.content."m.relates_to".rel_type') = ?)
           AND (? IS NULL OR type = ?)
           AND stream_ordering <= ? AND stream_ordering > ?
         ORDER BY stream_ordering DESC LIMIT ?`,
      ),
      // Thread roots with their latest reply position, most recently active first.
      threads: db.prepare(
        `SELECT json_extract(json, '$.content."m.relates_to".event_id') AS root, MAX(stream_ordering) AS latest,
                COUNT(*) AS replies, MAX(sender = ?) AS participated
         FROM events WHERE room_id = ? AND json_extract(json, '$.content."m.relates_to".rel_type') = 'm.thread'
           AND stream_ordering <= ?
         GROUP BY root HAVING latest <= ? ORDER BY latest DESC LIMIT ?`,
      ),
      eventAfterTs: db.prepare(
        `SELECT ${cols} FROM events WHERE room_id = ? AND json_extract(json, '$.origin_server_ts') >= ?
         AND stream_ordering <= ? ORDER BY stream_ordering ASC LIMIT 1`,
      ),
      eventBeforeTs: db.prepare(
        `SELECT ${cols} FROM events WHERE room_id = ? AND json_extract(json, '$.origin_server_ts') <= ?
         AND stream_ordering <= ? ORDER BY stream_ordering DESC LIMIT 1`,
      ),
      membership: db.prepare("SELECT * FROM memberships WHERE room_id = ? AND user_id = ?"),
      roomsForUser: db.prepare("SELECT * FROM memberships WHERE user_id = ?"),
      members: db.prepare("SELECT * FROM memberships WHERE room_id = ?"),
      membersWith: db.prepare("SELECT user_id FROM memberships WHERE room_id = ? AND membership = ?"),
      eventsAfter: db.prepare(
        `SELECT ${cols} FROM events WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ?
         ORDER BY stream_ordering ASC LIMIT ?`,
      ),
      allEventsAfter: db.prepare(
        `SELECT ${cols} FROM events WHERE stream_ordering > ? AND stream_ordering <= ?
         ORDER BY stream_ordering ASC LIMIT ?`,
      ),
      eventsBefore: db.prepare(
        `SELECT ${cols} FROM events WHERE room_id = ? AND stream_ordering <= ? AND stream_ordering > ?
         ORDER BY stream_ordering DESC LIMIT ?`,
      ),
      roomsChanged: db.prepare(
        "SELECT DISTINCT room_id FROM events WHERE stream_ordering > ? AND stream_ordering <= ?",
      ),
      memberEventsBetween: db.prepare(
        `SELECT DISTINCT room_id FROM events WHERE type = 'm.room.member'
         AND stream_ordering > ? AND stream_ordering <= ?`,
      ),
      // Who the user shares a joined room with, now.
      sharingNow: db.prepare(
        `SELECT DISTINCT o.user_id FROM memberships me JOIN memberships o ON o.room_id = me.room_id
         WHERE me.user_id = ? AND me.membership = 'join' AND o.membership = 'join'`,
      ),
      getAlias: db.prepare("SELECT room_id, creator FROM room_aliases WHERE alias = ?"),
      putAlias: db.prepare("INSERT OR IGNORE INTO room_aliases (alias, room_id, creator) VALUES (?, ?, ?)"),
      countAliasesBy: db.prepare("SELECT COUNT(*) AS n FROM room_aliases WHERE creator = ?"),
      deleteAlias: db.prepare("DELETE FROM room_aliases WHERE alias = ?"),
      roomAliases: db.prepare("SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias"),
    };
  }

  createRoom(roomId: string, version: string, creator: string): void {
    this.s.insertRoom.run(roomId, version, creator);
  }
  getRoom(roomId: string): RoomRow | undefined {
    return this.s.getRoom.get(roomId) as RoomRow | undefined;
  }
  setPublic(roomId: string, isPublic: boolean): void {
    this.s.setPublic.run(isPublic ? 1 : 0, roomId);
  }
  publicRooms(): string[] {
    return (this.s.publicRooms.all() as { room_id: string }[]).map((r) => r.room_id);
  }

  /** Appends an event at `pos`, updating current state and the membership table for state events. */
  insertEvent(pos: number, ev: RoomEvent, txnDevice: string | null, txnId: string | null): void {
    this.s.insertEvent.run(
      pos,
      ev.event_id,
      ev.room_id,
      ev.type,
      ev.state_key ?? null,
      ev.sender,
      JSON.stringify(ev),
      txnDevice,
      txnId,
    );
    if (ev.state_key !== undefined) {
      this.s.setState.run(ev.room_id, ev.type, ev.state_key, pos);
      if (ev.type === "m.room.member") {
        this.s.setMembership.run(ev.room_id, ev.state_key, String(ev.content.membership), pos);
      }
    }
  }
  getEvent(eventId: string): StreamEvent | undefined {
    const r = this.s.getEvent.get(eventId) as EventRow | undefined;
    return r ? toStream(r) : undefined;
  }
  replaceEventJson(ev: RoomEvent): void {
    this.s.updateJson.run(JSON.stringify(ev), ev.event_id);
  }
  currentState(roomId: string): StreamEvent[] {
    return (this.s.currentState.all(roomId) as EventRow[]).map(toStream);
  }
  stateEvent(roomId: string, type: string, stateKey: string): RoomEvent | undefined {
    const r = this.s.stateEvent.get(roomId, type, stateKey) as EventRow | undefined;
    return r ? toStream(r).event : undefined;
  }
  stateAt(roomId: string, pos: number): StreamEvent[] {
    return (this.s.stateAt.all(roomId, pos) as EventRow[]).map(toStream);
  }
  stateEventAt(roomId: string, type: string, stateKey: string, pos: number): RoomEvent | undefined {
    const r = this.s.stateEventAt.get(roomId, type, stateKey, pos) as EventRow | undefined;
    return r ? toStream(r).event : undefined;
  }
  /** Every value a state entry has had, oldest first. */
  stateHistory(roomId: string, type: string, stateKey: string): StreamEvent[] {
    return (this.s.stateHistory.all(roomId, type, stateKey) as EventRow[]).map(toStream);
  }
  /** Events relating to `parentId` with `floor < pos <= from`, newest first. */
  relations(
    roomId: string,
    parentId: string,
    relType: string | null,
    eventType: string | null,
    from: number,
    floor: number,
    limit: number,
  ): StreamEvent[] {
    return (
      this.s.relations.all(
        roomId,
        parentId,
        relType,
        relType,
        eventType,
        eventType,
        from,
        floor,
        limit,
      ) as EventRow[]
    ).map(toStream);
  }
  /** Threads in a room whose latest reply is at or before `from`, newest activity first. */
  threads(
    roomId: string,
    viewer: string,
    upTo: number,
    from: number,
    limit: number,
  ): { root: string; latest: number; replies: number; participated: boolean }[] {
    const rows = this.s.threads.all(viewer, roomId, upTo, from, limit) as {
      root: string;
      latest: number;
      replies: number;
      participated: number;
    }[];
    return rows.map((r) => ({ ...r, participated: r.participated === 1 }));
  }
  /** The event at a stream position. */
  eventAt(pos: number): StreamEvent | undefined {
    const r = this.s.eventAt.get(pos) as EventRow | undefined;
    return r ? toStream(r) : undefined;
  }
  /** The first event at or after `ts` (dir "f") or the last at or before it (dir "b"), up to `upTo`. */
  eventNearTs(roomId: string, ts: number, dir: "f" | "b", upTo: number): StreamEvent | undefined {
    const stmt = dir === "f" ? this.s.eventAfterTs : this.s.eventBeforeTs;
    const r = stmt.get(roomId, ts, upTo) as EventRow | undefined;
    return r ? toStream(r) : undefined;
  }
  membership(roomId: string, userId: string): MembershipRow | undefined {
    return this.s.membership.get(roomId, userId) as MembershipRow | undefined;
  }
  roomsForUser(userId: string): MembershipRow[] {
    return this.s.roomsForUser.all(userId) as MembershipRow[];
  }
  members(roomId: string): MembershipRow[] {
    return this.s.members.all(roomId) as MembershipRow[];
  }
  membersWith(roomId: string, membership: Membership): string[] {
    return (this.s.membersWith.all(roomId, membership) as { user_id: string }[]).map((r) => r.user_id);
  }
  forget(roomId: string, userId: string): void {
    this.s.forget.run(roomId, userId);
  }
  /** Events with `from < pos <= to`, oldest first. */
  eventsAfter(roomId: string, from: number, to: number, limit: number): StreamEvent[] {
    return (this.s.eventsAfter.all(roomId, from, to, limit) as EventRow[]).map(toStream);
  }
  /** Events with `floor < pos <= from`, newest first. */
  /** Events of every room in (`from`, `to`], oldest first (appservice transactions). */
  allEventsAfter(from: number, to: number, limit: number): StreamEvent[] {
    return (this.s.allEventsAfter.all(from, to, limit) as EventRow[]).map(toStream);
  }
  eventsBefore(roomId: string, from: number, floor: number, limit: number): StreamEvent[] {
    return (this.s.eventsBefore.all(roomId, from, floor, limit) as EventRow[]).map(toStream);
  }
  roomsChangedBetween(from: number, to: number): Set<string> {
    return new Set((this.s.roomsChanged.all(from, to) as { room_id: string }[]).map((r) => r.room_id));
  }
  roomsWithMemberEventsBetween(from: number, to: number): string[] {
    return (this.s.memberEventsBetween.all(from, to) as { room_id: string }[]).map((r) => r.room_id);
  }
  usersSharingRoomWith(userId: string): Set<string> {
    return new Set((this.s.sharingNow.all(userId) as { user_id: string }[]).map((r) => r.user_id));
  }

  getAlias(alias: string): { room_id: string; creator: string } | undefined {
    return this.s.getAlias.get(alias) as { room_id: string; creator: string } | undefined;
  }
  countAliasesBy(creator: string): number {
    return (this.s.countAliasesBy.get(creator) as { n: number }).n;
  }
  putAlias(alias: string, roomId: string, creator: string): boolean {
    return this.s.putAlias.run(alias, roomId, creator).changes === 1;
  }
  deleteAlias(alias: string): void {
    this.s.deleteAlias.run(alias);
  }
  roomAliases(roomId: string): string[] {
    return (this.s.roomAliases.all(roomId) as { alias: string }[]).map((r) => r.alias);
  }
}
