// A room's display name from its members when it has no name or canonical alias: the spec's
// "Calculating the display name for a room", step 3, with members' names disambiguated as in
// "Calculating the display name for a user".
import type { JsonObject, Membership } from "../../wire/index.ts";
import { cutText } from "../cut-text.ts";

type Member = { userId: string; membership: Membership; displayName?: string };

/** What of a `Room` its display name is made of (not the class itself: it calls this). */
export interface NamedRoom {
  readonly ownUserId: string | undefined;
  readonly heroes: readonly string[] | undefined;
  readonly members: readonly Member[];
  readonly inviteState: readonly { type: string; state_key: string; content: JsonObject }[];
  readonly joinedMemberCount: number;
  readonly invitedMemberCount: number;
}

/** Heroes named in a room's display name, at most (the spec: a client may limit them; at least 5). */
export const ROOM_NAME_HEROES = 5;

/**
 * What a room's display name made from its members says, for the client's `roomNameFormatter`:
 * - `members`: other members are joined or invited: `names` (at most `ROOM_NAME_HEROES`, each
 *   disambiguated) and `others` more not named ("Alice, Bob and 3 others"; `names` may be empty
 *   when the server named no one: "3 others");
 * - `former_members`: no one else is joined or invited, but `names` (and `others` more) were
 *   ("Empty Room (was Alice)");
 * - `empty`: no one else is, or is known to have been ("Empty Room").
 */
export type RoomNameParts =
  | { readonly kind: "members"; readonly names: readonly string[]; readonly others: number }
  | { readonly kind: "former_members"; readonly names: readonly string[]; readonly others: number }
  | { readonly kind: "empty" };

/** Makes a room's display name from its members (translated, say); the default is `englishRoomName`. */
export type RoomNameFormatter = (parts: RoomNameParts) => string;

/**
 * A user ID of the spec's grammar, historical ones included (printable ASCII, `@localpart:server`,
 * at most 255 characters): only such are named in a room's display name, where a user ID stands
 * for a member without a display name, so no control or bidirectional character comes in with one.
 */
export function isNameableUserId(id: string): boolean {
  return id.length <= 255 && /^@[\x21-\x39\x3b-\x7e]+:[\x21-\x7e]+$/.test(id);
}

/**
 * The members to name the room after: the room summary's heroes, else (no summary yet, or an
 * invitation) the other members the room's state or invite state holds, joined and invited ones
 * first (by user ID: state has no order), then those who left or were banned; only members
 * whose user ID `isNameableUserId`.
 */
function heroIds(room: NamedRoom, members: readonly Member[]): readonly string[] {
  if (room.heroes !== undefined) return room.heroes;
  const others = members.filter((m) => m.userId !== room.ownUserId && isNameableUserId(m.userId));
  for (const e of room.inviteState) {
    if (e.type !== "m.room.member" || e.state_key === room.ownUserId || !isNameableUserId(e.state_key))
      continue;
    if (!others.some((m) => m.userId === e.state_key)) {
      const membership = e.content.membership;
      if (membership === "join" || membership === "invite")
        others.push({ userId: e.state_key, membership, ...displayNameOf(e.content.displayname) });
    }
  }
  const present = others.filter((m) => m.membership === "join" || m.membership === "invite");
  const pick = present.length > 0 ? present : others.filter((m) => m.membership !== "knock");
  return pick.map((m) => m.userId).sort();
}

const displayNameOf = (v: unknown): { displayName?: string } =>
  typeof v === "string" ? { displayName: v } : {};

/**
 * Longest member display name a room's name made from its members shows (UTF-16 code units); a
 * longer one is replaced by the user ID. Homeservers cap display names at about this (Synapse: 256).
 */
export const MAX_ROOM_NAME_MEMBER_CHARS = 256;

/**
 * Controls (C0, DEL, C1) and the bidirectional embeddings, overrides and isolates, which reorder
 * the text after them (the names around, the user ID that tells a name apart).
 */
const UNSHOWABLE = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;
/** Text that can be shown as it is: well-formed Unicode, none of the `UNSHOWABLE` characters. */
const showable = (text: string): boolean => text.isWellFormed() && !UNSHOWABLE.test(text);

/**
 * Longest room name `Room.displayName` shows (UTF-16 code units, the `…` included): a longer
 * `m.room.name` is cut, ending in `…`. The spec no longer bounds room names (servers never
 * enforced its old 255 bytes) and leaves cutting them to clients.
 */
export const MAX_ROOM_NAME_CHARS = 256;

/** Longest canonical alias shown (the spec's bound on a room alias, 255 bytes). */
const MAX_ALIAS_LENGTH = 255;

/**
 * What `Room.displayName` shows of the room's own name, `name` (`m.room.name`) else `alias` (the
 * canonical alias), or undefined to name it after its members. Either is passed over, as a
 * member's display name is, when it has control or bidirectional characters (which would reorder
 * or hide the text around the name) or ill-formed Unicode; `name` is cut to
 * `MAX_ROOM_NAME_CHARS`; `alias` is passed over unless it starts with `#` and is at most 255 units.
 */
export function shownRoomName(name: string | undefined, alias: string | undefined): string | undefined {
  if (name !== undefined && name !== "" && showable(name)) return cutText(name, MAX_ROOM_NAME_CHARS);
  if (alias?.startsWith("#") && alias.length <= MAX_ALIAS_LENGTH && showable(alias)) return alias;
  return undefined;
}

/**
 * What makes a name pass for another that it is not equal to: a user ID (`@name:server`), or
 * invisible characters (zero-width space, joiners, word joiner, invisible operators, byte order
 * mark, bidirectional marks) that leave "Alice" looking like another member's "Alice".
 */
const AMBIGUOUS = /@.*:|[\u061c\u200b-\u200f\u2060-\u2064\ufeff]/u;

/**
 * `userId`'s name in the room: its member event's `displayname`, followed by the user ID when
 * another joined or invited member has the same one, or when it could pass for another name
 * (it reads like a user ID, or has invisible characters); the
 * user ID alone without one, or for one that cannot be shown as it is (ill-formed Unicode, control
 * or bidirectional characters, which would reorder or hide the names around it, or longer than
 * `MAX_ROOM_NAME_MEMBER_CHARS`).
 */
function memberName(room: NamedRoom, members: readonly Member[], userId: string): string {
  const own = members.find((m) => m.userId === userId);
  const invited = room.inviteState.find((e) => e.type === "m.room.member" && e.state_key === userId);
  const name = own?.displayName ?? displayNameOf(invited?.content.displayname).displayName;
  if (name === undefined || name === "" || name.length > MAX_ROOM_NAME_MEMBER_CHARS) return userId;
  if (!showable(name)) return userId;
  const clash = members.some(
    (m) =>
      m.userId !== userId && (m.membership === "join" || m.membership === "invite") && m.displayName === name,
  );
  return clash || AMBIGUOUS.test(name) ? `${name} (${userId})` : name;
}

/** "A", "A and B", "A, B and C"; with `others` more: "A, B and 3 others". */
function list(names: readonly string[], others: number): string {
  const parts = [...names];
  if (others > 0) parts.push(others === 1 ? "1 other" : `${others} others`);
  if (parts.length <= 1) return parts[0] ?? "";
  return `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

/** The default `RoomNameFormatter`: "Alice, Bob and 3 others", "Empty Room (was Alice)", "Empty Room". */
export function englishRoomName(parts: RoomNameParts): string {
  switch (parts.kind) {
    case "members":
      return list(parts.names, parts.others);
    case "former_members":
      return `Empty Room (was ${list(parts.names, parts.others)})`;
    case "empty":
      return "Empty Room";
  }
}

/** The room's display name from its members (the room having no name or canonical alias). */
export function roomDisplayName(room: NamedRoom, format: RoomNameFormatter = englishRoomName): string {
  return format(roomNameParts(room));
}

/** What the room's display name from its members says (see `RoomNameParts`). */
function roomNameParts(room: NamedRoom): RoomNameParts {
  const members = room.members;
  const heroes = heroIds(room, members);
  const names = heroes.slice(0, ROOM_NAME_HEROES).map((id) => memberName(room, members, id));
  const total = room.joinedMemberCount + room.invitedMemberCount;
  // The members not named: all but us and the heroes named (the heroes may be more than the
  // counts say, a summary's counts and heroes coming apart: then none).
  const others = Math.max(0, total - 1 - names.length);
  if (total <= 1) {
    // Alone: the heroes are those who left.
    return names.length === 0
      ? { kind: "empty" }
      : { kind: "former_members", names, others: heroes.length - names.length };
  }
  if (names.length === 0 && others === 0) return { kind: "empty" };
  return { kind: "members", names, others };
}
