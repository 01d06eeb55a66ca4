// Events that became readable late: an encrypted event whose room key arrives long after the event
// (from the key backup, a forwarded key, a history-sharing bundle) is emitted again as
// `room.decrypted` and would run its command then, which for `!deploy` three days on is a hazard.
// Such an event is judged by how long it waited for its key: from when the bot first saw it in sync
// (its local clock both times, so a server's skewed clock does not matter), or, when the bot did not
// see it arrive (it came before a restart, or the record was dropped past `MAX_AWAITED_EVENTS`), from
// its `origin_server_ts`. Past `maxDelayMs` it is not handled. Events readable on arrival are never
// judged, whatever their timestamp: catching up after downtime is not lateness.
import type { Clock, RoomEvent } from "../index.ts";

/** Default `lateEvents.maxDelayMs`: an event readable later than this after it arrived is not handled. */
export const DEFAULT_LATE_EVENT_MAX_DELAY_MS = 10 * 60_000;
/** At most one "came too late" notice per room in this time. */
export const LATE_NOTICE_INTERVAL_MS = 60_000;
/** Undecryptable events whose arrival time is kept (anyone in a room can send such events); the oldest are forgotten. */
export const MAX_AWAITED_EVENTS = 10_000;

export interface LateEventOptions {
  /** Longest wait for an event's key before it is no longer handled (default `DEFAULT_LATE_EVENT_MAX_DELAY_MS`). */
  maxDelayMs?: number;
  /**
   * Answer a late command from an owner, or in a direct chat, with a notice that it was not run
   * (default true; at most one notice per room per `LATE_NOTICE_INTERVAL_MS`).
   */
  notify?: boolean;
}

/** How long an event that just decrypted waited, and from what that is counted. */
export interface Lateness {
  delayMs: number;
  since: "arrival" | "origin_server_ts";
}

export class LateEvents {
  readonly maxDelayMs: number;
  readonly notify: boolean;
  /** Undecryptable events seen in sync: when they arrived, and in which room. */
  readonly #arrived = new Map<string, { roomId: string; at: number }>();
  /** When each room last got a late notice (only rooms noticed within the interval). */
  readonly #noticed = new Map<string, number>();

  constructor(
    private readonly clock: Pick<Clock, "now">,
    opts: LateEventOptions = {},
  ) {
    this.maxDelayMs = opts.maxDelayMs ?? DEFAULT_LATE_EVENT_MAX_DELAY_MS;
    this.notify = opts.notify ?? true;
  }

  /** An event arrived that cannot be read yet. */
  arrived(ev: RoomEvent): void {
    if (this.#arrived.has(ev.eventId)) return;
    this.#arrived.set(ev.eventId, { roomId: ev.roomId, at: this.clock.now() });
    if (this.#arrived.size > MAX_AWAITED_EVENTS) {
      const oldest = this.#arrived.keys().next().value;
      if (oldest !== undefined) this.#arrived.delete(oldest);
    }
  }

  /** An event became readable now: how long after its arrival (its arrival record is dropped). */
  decrypted(ev: RoomEvent): Lateness {
    const now = this.clock.now();
    const seen = this.#arrived.get(ev.eventId);
    this.#arrived.delete(ev.eventId);
    return seen !== undefined
      ? { delayMs: now - seen.at, since: "arrival" }
      : { delayMs: now - ev.originServerTs, since: "origin_server_ts" };
  }

  isLate(lateness: Lateness | undefined): lateness is Lateness {
    return lateness !== undefined && lateness.delayMs > this.maxDelayMs;
  }

  /** Whether a late notice may go to `roomId` now (and if so, counts it). */
  takeNotice(roomId: string): boolean {
    if (!this.notify) return false;
    const now = this.clock.now();
    for (const [id, at] of this.#noticed) if (now - at >= LATE_NOTICE_INTERVAL_MS) this.#noticed.delete(id);
    if (this.#noticed.has(roomId)) return false;
    this.#noticed.set(roomId, now);
    return true;
  }

  /** The bot is no longer in `roomId`: forgets what it kept for it. */
  forgetRoom(roomId: string): void {
    this.#noticed.delete(roomId);
    for (const [id, seen] of this.#arrived) if (seen.roomId === roomId) this.#arrived.delete(id);
  }

  /** Entries kept (for tests of `forgetRoom`). */
  get size(): number {
    return this.#arrived.size + this.#noticed.size;
  }
}

/** "3 days", "2 h", "15 min": how late, for a notice. */
export function roughDuration(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (min < 120) return `${min} min`;
  const h = Math.round(ms / 3_600_000);
  if (h < 48) return `${h} h`;
  return `${Math.round(ms / 86_400_000)} days`;
}
