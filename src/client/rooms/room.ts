// One room as the client knows it from sync: the local user's membership, current state, members,
// per-room account data and upgrade links. Mutated only by the sync handler.
import type {
  BasicEvent,
  ClientEvent,
  JoinedRoomSync,
  JsonObject,
  Membership,
  RoomSummary,
  StateEvent,
  StrippedStateEvent,
} from "../../wire/index.ts";
import { MAX_ROOM_HEROES, type RoomSnapshot } from "../client-store/index.ts";
import {
  englishRoomName,
  isNameableUserId,
  type RoomNameFormatter,
  roomDisplayName,
  shownRoomName,
} from "./display-name.ts";
import { NO_UNREAD, nextUnread, sameUnread, type UnreadNotifications } from "./unread.ts";

export interface RoomMember {
  userId: string;
  membership: Membership;
  displayName?: string;
  avatarUrl?: string;
}

export interface RoomEncryptionSettings {
  algorithm: string;
  rotationPeriodMs?: number;
  rotationPeriodMessages?: number;
}

/** Where an upgraded room went (`m.room.tombstone`). */
export interface Tombstone {
  replacementRoomId: string;
  body?: string;
  eventId: string;
}

/** The room an upgraded room came from (`predecessor` in `m.room.create`). */
export interface Predecessor {
  roomId: string;
  eventId?: string;
}

/** What the server's room summary (`summary` in `/sync`) said last, each field as it last came. */
export interface RoomSummaryInfo {
  /** `m.heroes`: members to name the room after (never the local user). */
  readonly heroes?: readonly string[];
  /** `m.joined_member_count`. */
  readonly joinedMemberCount?: number;
  /** `m.invited_member_count`. */
  readonly invitedMemberCount?: number;
}

/** A hero the client keeps: a user ID of the spec's grammar (`isNameableUserId`), not the local user's, once. */
function heroesOf(ids: readonly string[], ownUserId: string | undefined): string[] {
  const out: string[] = [];
  for (const id of ids) {
    if (out.length >= MAX_ROOM_HEROES) break;
    if (!isNameableUserId(id) || id === ownUserId || out.includes(id)) continue;
    out.push(id);
  }
  return out;
}

/** Whether two heroes lists are the same (item by item: a hero ID may hold any separator). */
const sameHeroes = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.length === b.length && a.every((id, i) => id === b[i]);

const MEMBERSHIPS: ReadonlySet<string> = new Set(["join", "invite", "leave", "ban", "knock"]);

const str = (c: JsonObject | undefined, k: string): string | undefined => {
  const v = c?.[k];
  return typeof v === "string" ? v : undefined;
};
/**
 * A count or duration (`rotation_period_ms`, `rotation_period_msgs`): a non-negative safe integer,
 * as the spec and the crypto store have it. Anything else is ignored (the defaults apply): a room
 * member's `-1` or `1.5` recorded as the room's settings made the crypto store refuse the record,
 * which failed every sync from then on.
 */
const count = (c: JsonObject | undefined, k: string): number | undefined => {
  const v = c?.[k];
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
};
const key = (type: string, stateKey: string) => `${type}\u0000${stateKey}`;

/**
 * Stripped state events kept per invitation. Servers send about ten (create, join rules, name,
 * topic, avatar, encryption, the inviter's and our membership), but the inviting server writes
 * them, anyone can invite us, and each invitation's are kept (and stored) while it stands.
 */
export const MAX_INVITE_STATE_EVENTS = 50;
/** Their total size as JSON text (UTF-16 code units), as much as one event may take on federation. */
export const MAX_INVITE_STATE_CHARS = 65_536;

/**
 * An invitation's stripped state within `MAX_INVITE_STATE_EVENTS` and `MAX_INVITE_STATE_CHARS`, in
 * its order: our own membership event (it names the inviter) first, then the others as they come
 * while they fit; an event that does not fit is left out.
 */
export function boundInviteState(
  events: readonly StrippedStateEvent[],
  userId: string,
): StrippedStateEvent[] {
  const own = events.findIndex((e) => e.type === "m.room.member" && e.state_key === userId);
  const kept = new Set<number>();
  let chars = 0;
  const take = (i: number) => {
    const size = JSON.stringify(events[i]).length;
    if (chars + size > MAX_INVITE_STATE_CHARS) return;
    chars += size;
    kept.add(i);
  };
  if (own >= 0) take(own);
  for (let i = 0; i < events.length && kept.size < MAX_INVITE_STATE_EVENTS; i++) if (i !== own) take(i);
  return kept.size === events.length ? [...events] : events.filter((_, i) => kept.has(i));
}

/**
 * What the spec's redaction algorithm keeps of a state event's content, by room version (1 to 10;
 * 11 and later, and versions that are not a number, as 11): `"all"`, or the top-level keys.
 */
function keptContent(type: string, roomVersion: string): "all" | readonly string[] {
  const n = versionNumber(roomVersion);
  const v11 = n >= 11;
  switch (type) {
    case "m.room.member":
      return [
        "membership",
        ...(n >= 9 ? ["join_authorised_via_users_server"] : []),
        ...(v11 ? ["third_party_invite"] : []),
      ];
    case "m.room.create":
      return v11 ? "all" : ["creator"];
    case "m.room.join_rules":
      return n >= 8 ? ["join_rule", "allow"] : ["join_rule"];
    case "m.room.power_levels":
      return [
        "ban",
        "events",
        "events_default",
        "kick",
        "redact",
        "state_default",
        "users",
        "users_default",
        ...(v11 ? ["invite"] : []),
      ];
    case "m.room.history_visibility":
      return ["history_visibility"];
    case "m.room.aliases":
      return n <= 5 ? ["aliases"] : [];
    default:
      return [];
  }
}

/** `ev` as the redaction algorithm leaves it, `redaction` named in its `unsigned` (without its content). */
function redactedState(ev: StateEvent, redaction: ClientEvent, roomVersion: string): StateEvent {
  const keep = keptContent(ev.type, roomVersion);
  let content: JsonObject = {};
  if (keep === "all") content = ev.content;
  else {
    for (const k of keep) {
      const v = ev.content[k];
      if (v !== undefined) content[k] = v;
    }
    // Room version 11 keeps only `signed` of a membership's third-party invitation.
    const tpi = content.third_party_invite;
    if (tpi !== undefined) {
      const signed =
        typeof tpi === "object" && tpi !== null && !Array.isArray(tpi)
          ? (tpi as JsonObject).signed
          : undefined;
      if (signed === undefined) delete content.third_party_invite;
      else content = { ...content, third_party_invite: { signed } };
    }
  }
  const out: StateEvent = {
    event_id: ev.event_id,
    type: ev.type,
    sender: ev.sender,
    origin_server_ts: ev.origin_server_ts,
    state_key: ev.state_key,
    content,
    // The redaction's own content (its reason) is left out: nested here it could pass the depth
    // bound events are stored within.
    unsigned: {
      redacted_because: {
        event_id: redaction.event_id,
        type: redaction.type,
        sender: redaction.sender,
        origin_server_ts: redaction.origin_server_ts,
      },
    },
  };
  if (ev.room_id !== undefined) out.room_id = ev.room_id;
  return out;
}

/** A room version as a number (versions that are not one count as the newest). */
const versionNumber = (roomVersion: string): number =>
  /^[0-9]+$/.test(roomVersion) ? Number(roomVersion) : Number.POSITIVE_INFINITY;

/**
 * The event an `m.room.redaction` redacts: from room version 11 `content.redacts`, before it the
 * top-level `redacts` (the one servers authorise it by; the other is then free content).
 */
function redactedEventId(
  ev: Pick<ClientEvent, "type" | "redacts" | "content">,
  roomVersion: string,
): string | undefined {
  if (ev.type !== "m.room.redaction") return undefined;
  if (versionNumber(roomVersion) < 11) return ev.redacts;
  const c = ev.content.redacts;
  return typeof c === "string" ? c : undefined;
}

/** A power level: an integer (or, before room version 10, an integer's text). */
function powerLevel(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  return typeof v === "string" && /^[+-]?[0-9]{1,15}$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

/** The server part of a user ID. */
const serverOf = (userId: string): string => userId.slice(userId.indexOf(":") + 1);

export class Room {
  readonly roomId: string;
  private _membership: Membership;
  private readonly state = new Map<string, StateEvent>();
  /**
   * `state`'s events as the snapshots' `state`, made at the first snapshot after a change and then
   * handed to every snapshot (frozen) until the next: a store tells unchanged state by the array
   * alone (`RoomSnapshot.state`), so a message in a room of thousands of members writes none of them.
   */
  #stateArray: readonly StateEvent[] | undefined;
  /** The key in `state` of each current state event, by event ID (what a redaction names). */
  private readonly stateKeyById = new Map<string, string>();
  private _inviteState: StrippedStateEvent[] = [];
  private readonly accountData = new Map<string, BasicEvent>();
  private _typing: readonly string[] = [];
  private _summary: RoomSummaryInfo = {};
  private _unread: UnreadNotifications = NO_UNREAD;
  /** Pagination token for history before the latest timeline chunk seen in sync. */
  prevBatch: string | undefined;
  /** The local user, when known: left out of the members a room's display name is made of. */
  readonly ownUserId: string | undefined;
  /** Words the display name made from members (the client's `roomNameFormatter`). */
  readonly #formatName: RoomNameFormatter;

  constructor(
    roomId: string,
    membership: Membership = "join",
    ownUserId?: string,
    formatName: RoomNameFormatter = englishRoomName,
  ) {
    this.roomId = roomId;
    this._membership = membership;
    this.ownUserId = ownUserId;
    this.#formatName = formatName;
  }

  get membership(): Membership {
    return this._membership;
  }

  /** The current state event of `type` / `stateKey`. */
  getState(type: string, stateKey = ""): StateEvent | undefined {
    return this.state.get(key(type, stateKey));
  }

  /** All current state events of one type (e.g. every `m.room.member`). */
  getStateEvents(type: string): StateEvent[] {
    const out: StateEvent[] = [];
    for (const ev of this.state.values()) if (ev.type === type) out.push(ev);
    return out;
  }

  /** The state shown with an invite (before joining). */
  get inviteState(): readonly StrippedStateEvent[] {
    return this._inviteState;
  }

  /** A string field of the room's state event `type` (state key ""), else of its invite state's. */
  #stateField(type: string, field: string): string | undefined {
    return (
      str(this.getState(type)?.content, field) ??
      str(this._inviteState.find((e) => e.type === type && e.state_key === "")?.content, field)
    );
  }

  /**
   * The room's `m.room.name`, else its canonical alias, as the room's state holds it: whatever its
   * admins wrote (any length, control or bidirectional characters), for an app that edits it.
   * Show `displayName`.
   */
  get name(): string | undefined {
    return (
      this.#stateField("m.room.name", "name") ||
      this.#stateField("m.room.canonical_alias", "alias") ||
      undefined
    );
  }

  /**
   * The name to show for the room, by the spec's rules ("Calculating the display name for a
   * room"): `m.room.name`, else the canonical alias, each passed over when it cannot be shown as
   * it is (control or bidirectional characters, ill-formed Unicode; see `shownRoomName`) and the
   * name cut to `MAX_ROOM_NAME_CHARS`; else the room summary's heroes by their member display
   * names (disambiguated), e.g. "Alice, Bob and 3 others", or "Empty Room" ("Empty Room (was
   * Alice)") when no one else is joined or invited, in the words of the client's
   * `roomNameFormatter` when it has one. Without a summary, the members the room's state holds
   * stand in for the heroes.
   */
  get displayName(): string {
    const own = shownRoomName(
      this.#stateField("m.room.name", "name"),
      this.#stateField("m.room.canonical_alias", "alias"),
    );
    return own ?? roomDisplayName(this, this.#formatName);
  }

  /** The room summary as the server last sent it (`heroes`, member counts), fields it never sent absent. */
  get summary(): RoomSummaryInfo {
    return this._summary;
  }

  /** `m.heroes` of the room summary (at most `MAX_ROOM_HEROES`), undefined when never sent. */
  get heroes(): readonly string[] | undefined {
    return this._summary.heroes;
  }

  /** Joined members: the room summary's count, else those the room's state holds. */
  get joinedMemberCount(): number {
    return this._summary.joinedMemberCount ?? this.joinedMemberIds.length;
  }

  /** Invited members: the room summary's count, else those the room's state holds. */
  get invitedMemberCount(): number {
    return this._summary.invitedMemberCount ?? this.members.filter((m) => m.membership === "invite").length;
  }

  /**
   * Unread notifications as the server last counted them (`unread_notifications`; per thread
   * `unread_thread_notifications`, when the sync filter asks for them); all 0 until it did.
   */
  get unreadNotifications(): UnreadNotifications {
    return this._unread;
  }

  get topic(): string | undefined {
    return str(this.getState("m.room.topic")?.content, "topic");
  }

  get roomVersion(): string {
    return str(this.getState("m.room.create")?.content, "room_version") ?? "1";
  }

  /** The `m.room.encryption` settings, when the room is encrypted. Encryption cannot be turned off. */
  get encryption(): RoomEncryptionSettings | undefined {
    // While invited, the invite's stripped state is all we know of the room (it names the algorithm).
    const c =
      this.getState("m.room.encryption")?.content ??
      this._inviteState.find((e) => e.type === "m.room.encryption" && e.state_key === "")?.content;
    const algorithm = str(c, "algorithm");
    if (!algorithm) return undefined;
    const s: RoomEncryptionSettings = { algorithm };
    const ms = count(c, "rotation_period_ms");
    const msgs = count(c, "rotation_period_msgs");
    if (ms !== undefined) s.rotationPeriodMs = ms;
    if (msgs !== undefined) s.rotationPeriodMessages = msgs;
    return s;
  }

  /**
   * Whether the room is encrypted: it has an `m.room.encryption` state event (its invite's, while
   * invited), whatever that event holds. One naming no usable algorithm (a member's `{}`) gives no
   * `encryption` settings but leaves the room encrypted: sends use the settings the crypto store
   * recorded, or are refused (never plaintext).
   */
  get encrypted(): boolean {
    return (
      this.getState("m.room.encryption") !== undefined ||
      this._inviteState.some((e) => e.type === "m.room.encryption" && e.state_key === "")
    );
  }

  /** Members from `m.room.member` state (whatever their membership). */
  get members(): RoomMember[] {
    const out: RoomMember[] = [];
    for (const ev of this.getStateEvents("m.room.member")) {
      const m = this.memberFrom(ev);
      if (m) out.push(m);
    }
    return out;
  }

  getMember(userId: string): RoomMember | undefined {
    const ev = this.getState("m.room.member", userId);
    return ev ? this.memberFrom(ev) : undefined;
  }

  /** User IDs with membership `join`. */
  get joinedMemberIds(): string[] {
    return this.members.filter((m) => m.membership === "join").map((m) => m.userId);
  }

  /** User IDs joined or invited: the recipients of room keys in encrypted rooms. */
  get joinedOrInvitedMemberIds(): string[] {
    return this.members
      .filter((m) => m.membership === "join" || m.membership === "invite")
      .map((m) => m.userId);
  }

  get tombstone(): Tombstone | undefined {
    const ev = this.getState("m.room.tombstone");
    const replacement = str(ev?.content, "replacement_room");
    if (!ev || !replacement) return undefined;
    const t: Tombstone = { replacementRoomId: replacement, eventId: ev.event_id };
    const body = str(ev.content, "body");
    if (body !== undefined) t.body = body;
    return t;
  }

  get predecessor(): Predecessor | undefined {
    const p = this.getState("m.room.create")?.content.predecessor;
    if (typeof p !== "object" || p === null || Array.isArray(p)) return undefined;
    const rec = p as JsonObject;
    const roomId = str(rec, "room_id");
    if (!roomId) return undefined;
    const out: Predecessor = { roomId };
    const eventId = str(rec, "event_id");
    if (eventId) out.eventId = eventId;
    return out;
  }

  /** Per-room account data content of `type`. */
  getAccountData(type: string): JsonObject | undefined {
    return this.accountData.get(type)?.content;
  }

  /** Users currently typing (from the latest `m.typing`): user IDs, at most `MAX_TYPING_USERS`. */
  get typingUserIds(): readonly string[] {
    return this._typing;
  }

  private memberFrom(ev: StateEvent): RoomMember | undefined {
    const membership = str(ev.content, "membership");
    if (!membership || !MEMBERSHIPS.has(membership)) return undefined;
    const m: RoomMember = { userId: ev.state_key, membership: membership as Membership };
    const dn = str(ev.content, "displayname");
    const av = str(ev.content, "avatar_url");
    if (dn !== undefined) m.displayName = dn;
    if (av !== undefined) m.avatarUrl = av;
    return m;
  }

  // ---- mutation, for the sync handler ----

  /**
   * @internal Changes whenever the state, the invite state or the membership may have changed:
   * work derived from them (e.g. recording the room's encryption) is skipped while it stays.
   */
  get stateVersion(): number {
    return this._stateVersion;
  }
  private _stateVersion = 0;

  /** @internal Applies a state event; returns the one it replaced. */
  applyState(ev: StateEvent): StateEvent | undefined {
    const k = key(ev.type, ev.state_key);
    const prev = this.state.get(k);
    this.state.set(k, ev);
    if (prev !== undefined && this.stateKeyById.get(prev.event_id) === k)
      this.stateKeyById.delete(prev.event_id);
    this.stateKeyById.set(ev.event_id, k);
    this._stateVersion++;
    this.#stateArray = undefined;
    return prev;
  }

  /**
   * @internal Applies a redaction (an `m.room.redaction` of the timeline) to the current state: the
   * state event it names, if still current, is replaced by its redacted form, when the redaction's
   * sender may redact it (as servers check it: the same server as the event's sender, or a power
   * level of at least `redact`; a server may pass on a redaction it does not apply). Returns that form.
   */
  applyRedaction(redaction: ClientEvent): StateEvent | undefined {
    const version = this.roomVersion;
    const target = redactedEventId(redaction, version);
    if (target === undefined) return undefined;
    const k = this.stateKeyById.get(target);
    const ev = k === undefined ? undefined : this.state.get(k);
    if (k === undefined || ev?.event_id !== target) return undefined;
    if (!this.mayRedact(redaction.sender, ev.sender)) return undefined;
    // A new object: stores write a state event again only when it is another one.
    const redacted = redactedState(ev, redaction, version);
    this.state.set(k, redacted);
    this._stateVersion++;
    this.#stateArray = undefined;
    return redacted;
  }

  /**
   * The event an `m.room.redaction` redacts, as this room's version says: from version 11 its
   * `content.redacts`, before it the top-level `redacts` (the one servers authorise it by; the
   * other is then free content, so a sender could name anyone's event in it). Undefined for other
   * events.
   */
  redactionTarget(ev: Pick<ClientEvent, "type" | "redacts" | "content">): string | undefined {
    return redactedEventId(ev, this.roomVersion);
  }

  /**
   * Whether a redaction sent by `redactor` of an event sent by `sender` is one servers apply (the
   * spec's redaction rules from room version 3): the redactor is of the sender's server (the
   * sender themself; another user of it, whom that server vouches for), or may redact others
   * (`mayRedactOthers`). Servers pass on redactions they do not apply, so clients check as this does.
   */
  mayRedact(redactor: string, sender: string): boolean {
    return serverOf(redactor) === serverOf(sender) || this.mayRedactOthers(redactor);
  }

  /**
   * Whether `userId` may redact other users' events, by the room's current state: their power
   * level reaches the `redact` level (from room version 12 the room's creators always may).
   * Servers pass on some redactions they do not apply, so clients check as this does.
   */
  mayRedactOthers(userId: string): boolean {
    const create = this.getState("m.room.create");
    if (versionNumber(this.roomVersion) >= 12 && create !== undefined) {
      // Room creators have the highest power level from room version 12.
      const more = create.content.additional_creators;
      if (create.sender === userId || (Array.isArray(more) && more.includes(userId))) return true;
    }
    const pl = this.getState("m.room.power_levels")?.content;
    if (pl === undefined) return create?.sender === userId;
    const users = pl.users;
    const own =
      typeof users === "object" && users !== null && !Array.isArray(users)
        ? powerLevel(Object.hasOwn(users, userId) ? (users as JsonObject)[userId] : undefined)
        : undefined;
    return (own ?? powerLevel(pl.users_default) ?? 0) >= (powerLevel(pl.redact) ?? 50);
  }

  /** @internal */
  setMembership(m: Membership): void {
    if (m !== this._membership) this._stateVersion++;
    this._membership = m;
    if (m !== "invite" && this._inviteState.length > 0) {
      this._inviteState = [];
      this._stateVersion++;
    }
  }

  /** @internal */
  setInviteState(events: StrippedStateEvent[]): void {
    this._inviteState = events;
    this._stateVersion++;
  }

  /** @internal */
  setAccountData(ev: BasicEvent): void {
    this.accountData.set(ev.type, ev);
  }

  /**
   * @internal Takes a sync response's room summary: each field it has replaces the one kept (the
   * server leaves out those that did not change). Heroes past `MAX_ROOM_HEROES`, and those that
   * are no user ID or are the local user, are left out. True when something changed.
   */
  applySummary(s: RoomSummary): boolean {
    const next: { -readonly [K in keyof RoomSummaryInfo]: RoomSummaryInfo[K] } = { ...this._summary };
    if (s["m.heroes"] !== undefined) next.heroes = heroesOf(s["m.heroes"], this.ownUserId);
    if (s["m.joined_member_count"] !== undefined) next.joinedMemberCount = s["m.joined_member_count"];
    if (s["m.invited_member_count"] !== undefined) next.invitedMemberCount = s["m.invited_member_count"];
    const changed =
      next.joinedMemberCount !== this._summary.joinedMemberCount ||
      next.invitedMemberCount !== this._summary.invitedMemberCount ||
      !sameHeroes(next.heroes, this._summary.heroes);
    if (changed) this._summary = next;
    return changed;
  }

  /**
   * @internal Takes a joined room's unread notification counts from a sync response (`nextUnread`);
   * true when they changed.
   */
  applyUnread(r: JoinedRoomSync): boolean {
    const next = nextUnread(this._unread, r);
    if (sameUnread(next, this._unread)) return false;
    this._unread = next;
    return true;
  }

  /** @internal */
  setTyping(userIds: readonly string[]): void {
    this._typing = userIds;
  }

  /**
   * What a client store keeps of the room. Its `state` is the same frozen array in every snapshot
   * while the room's state stays unchanged (see `RoomSnapshot.state`).
   */
  toSnapshot(): RoomSnapshot {
    this.#stateArray ??= Object.freeze([...this.state.values()]);
    const s: RoomSnapshot = {
      roomId: this.roomId,
      membership: this._membership,
      // Frozen: read-only for whoever gets it (the type stays that of a stored snapshot's).
      state: this.#stateArray as StateEvent[],
      accountData: [...this.accountData.values()],
    };
    if (this._inviteState.length > 0) s.inviteState = this._inviteState;
    if (this.prevBatch !== undefined) s.prevBatch = this.prevBatch;
    const { heroes, joinedMemberCount, invitedMemberCount } = this._summary;
    if (heroes !== undefined || joinedMemberCount !== undefined || invitedMemberCount !== undefined) {
      s.summary = {
        ...(heroes !== undefined ? { heroes: [...heroes] } : {}),
        ...(joinedMemberCount !== undefined ? { joinedMemberCount } : {}),
        ...(invitedMemberCount !== undefined ? { invitedMemberCount } : {}),
      };
    }
    // All 0 is kept as nothing, as a new room has it: a restart reads back the same snapshot.
    const u = this._unread;
    if (u.notificationCount > 0 || u.highlightCount > 0 || u.threads.size > 0) {
      s.unread = { notificationCount: u.notificationCount, highlightCount: u.highlightCount };
      if (u.threads.size > 0) s.unread.threads = [...u.threads].map(([threadId, c]) => ({ threadId, ...c }));
    }
    return s;
  }

  static fromSnapshot(s: RoomSnapshot, ownUserId?: string, formatName?: RoomNameFormatter): Room {
    const room = new Room(s.roomId, s.membership, ownUserId, formatName);
    if (s.summary !== undefined) {
      const { heroes, joinedMemberCount, invitedMemberCount } = s.summary;
      room.applySummary({
        ...(heroes !== undefined ? { "m.heroes": heroes } : {}),
        ...(joinedMemberCount !== undefined ? { "m.joined_member_count": joinedMemberCount } : {}),
        ...(invitedMemberCount !== undefined ? { "m.invited_member_count": invitedMemberCount } : {}),
      });
    }
    if (s.unread !== undefined) {
      const { notificationCount, highlightCount, threads } = s.unread;
      room.applyUnread({
        unread_notifications: { notification_count: notificationCount, highlight_count: highlightCount },
        unread_thread_notifications: Object.fromEntries(
          (threads ?? []).map((t) => [
            t.threadId,
            { notification_count: t.notificationCount, highlight_count: t.highlightCount },
          ]),
        ),
      });
    }
    for (const ev of s.state) room.applyState(ev);
    for (const ev of s.accountData) room.setAccountData(ev);
    if (s.inviteState) room.setInviteState(s.inviteState);
    room.prevBatch = s.prevBatch;
    return room;
  }
}
