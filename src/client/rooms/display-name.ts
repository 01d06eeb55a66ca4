// A room's display name from its members when it has no name or canonical alias: the spec's
// "Calculating the display name for a room", step 3, with members' names disambiguated as in
// "Calculating the display name for a user".
import type { JsonObject, Membership } from "../../wire/index.ts";

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
 * The members to name the room after: the room summary's heroes, else (no summary yet, or an
 * invitation) the other members the room's state or invite state holds, joined and invited ones
 * first (by user ID: state has no order), then those who left or were banned.
 */
function heroIds(room: NamedRoom, members: readonly Member[]): readonly string[] {
  if (room.heroes !== undefined) return room.heroes;
  const others = members.filter((m) => m.userId !== room.ownUserId);
  for (const e of room.inviteState) {
    if (e.type !== "m.room.member" || e.state_key === room.ownUserId) continue;
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
 * `userId`'s name in the room: its member event's `displayname`, followed by the user ID when
 * another joined or invited member has the same one; the user ID without one.
 */
function memberName(room: NamedRoom, members: readonly Member[], userId: string): string {
  const own = members.find((m) => m.userId === userId);
  const invited = room.inviteState.find((e) => e.type === "m.room.member" && e.state_key === userId);
  const name = own?.displayName ?? displayNameOf(invited?.content.displayname).displayName;
  if (name === undefined || name === "") return userId;
  const clash = members.some(
    (m) =>
      m.userId !== userId && (m.membership === "join" || m.membership === "invite") && m.displayName === name,
  );
  return clash ? `${name} (${userId})` : name;
}

/** "A", "A and B", "A, B and C"; with `others` more: "A, B and 3 others". */
function list(names: readonly string[], others: number): string {
  const parts = [...names];
  if (others > 0) parts.push(others === 1 ? "1 other" : `${others} others`);
  if (parts.length <= 1) return parts[0] ?? "";
  return `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

/** The room's display name from its members (the room having no name or canonical alias). */
export function roomDisplayName(room: NamedRoom): string {
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
      ? "Empty Room"
      : `Empty Room (was ${list(names, heroes.length - names.length)})`;
  }
  if (names.length === 0) return others > 0 ? list([], others) : "Empty Room";
  return list(names, others);
}
