// Presence from `/sync` (`presence.events`, `m.presence`): each user's last state as the server
// pushed it, kept in memory (not in the client store: presence goes stale) and bounded, since the
// server may push presence for any number of users.
import { type BasicEvent, isIdentifier } from "../wire/index.ts";
import { cutText } from "./cut-text.ts";

export type PresenceState = "online" | "offline" | "unavailable";

/** A user's presence as an `m.presence` event gave it. */
export interface Presence {
  userId: string;
  presence: PresenceState;
  /** Milliseconds since the user last did something, when the server sent it (as of the event). */
  lastActiveAgo?: number;
  currentlyActive?: boolean;
  /** At most `MAX_PRESENCE_STATUS_CHARS`: a longer one is cut, ending in `…`. */
  statusMsg?: string;
  /** At most `MAX_PRESENCE_TEXT_CHARS`; a longer one is left out. */
  displayName?: string;
  /** At most `MAX_PRESENCE_TEXT_CHARS`; a longer one is left out. */
  avatarUrl?: string;
}

/**
 * Users whose presence is kept, at most (`getPresence`): past it, the one updated longest ago is
 * forgotten. The server sends presence for the users it chooses, any number of them. With the text
 * bounds below, the cache holds at most about 4 MB (some 2 KB a user at the limits, user ID and
 * objects included; it was 66 MB at 10 000 users of 1 024-unit texts).
 */
export const MAX_PRESENCE_USERS = 2_000;
/**
 * Longest status message kept of a presence event (UTF-16 code units, the `…` included): a longer
 * one is cut (never inside a surrogate pair) and ends in `…`.
 */
export const MAX_PRESENCE_STATUS_CHARS = 256;
/** Longest display name or avatar URL kept of a presence event (UTF-16 code units); a longer one is left out. */
export const MAX_PRESENCE_TEXT_CHARS = 256;

const STATES: ReadonlySet<string> = new Set(["online", "offline", "unavailable"]);

const text = (v: unknown): string | undefined =>
  typeof v === "string" && v.length <= MAX_PRESENCE_TEXT_CHARS && v.isWellFormed() ? v : undefined;

/** A well-formed status message, cut to `MAX_PRESENCE_STATUS_CHARS`. */
const status = (v: unknown): string | undefined =>
  typeof v === "string" && v.isWellFormed() ? cutText(v, MAX_PRESENCE_STATUS_CHARS) : undefined;

/**
 * The presence an `m.presence` event gives; undefined for any other event, or one without a user
 * ID as its sender or a known `presence`. Optional fields of the wrong type are left out.
 */
export function presenceOf(ev: BasicEvent): Presence | undefined {
  const sender = ev.sender;
  const state = ev.content.presence;
  if (ev.type !== "m.presence" || !isIdentifier(sender) || !sender.startsWith("@")) return undefined;
  if (typeof state !== "string" || !STATES.has(state)) return undefined;
  const p: Presence = { userId: sender, presence: state as PresenceState };
  const ago = ev.content.last_active_ago;
  if (typeof ago === "number" && Number.isSafeInteger(ago) && ago >= 0) p.lastActiveAgo = ago;
  if (typeof ev.content.currently_active === "boolean") p.currentlyActive = ev.content.currently_active;
  const statusMsg = status(ev.content.status_msg);
  const displayName = text(ev.content.displayname);
  const avatarUrl = text(ev.content.avatar_url);
  if (statusMsg !== undefined) p.statusMsg = statusMsg;
  if (displayName !== undefined) p.displayName = displayName;
  if (avatarUrl !== undefined) p.avatarUrl = avatarUrl;
  return p;
}

/** The latest presence of at most `MAX_PRESENCE_USERS` users, the least recently updated forgotten first. */
export class PresenceCache {
  readonly #byUser = new Map<string, Presence>();

  get(userId: string): Presence | undefined {
    const p = this.#byUser.get(userId);
    return p === undefined ? undefined : { ...p };
  }

  set(p: Presence): void {
    this.#byUser.delete(p.userId); // to the end: the most recently updated
    this.#byUser.set(p.userId, p);
    if (this.#byUser.size > MAX_PRESENCE_USERS) {
      const oldest = this.#byUser.keys().next();
      if (!oldest.done) this.#byUser.delete(oldest.value);
    }
  }

  get size(): number {
    return this.#byUser.size;
  }

  clear(): void {
    this.#byUser.clear();
  }
}
