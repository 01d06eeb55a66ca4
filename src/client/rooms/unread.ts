// A room's unread notification counts as `/sync` gives them (`unread_notifications`, and per thread
// `unread_thread_notifications` when the sync filter asks for them): what the server's push rules
// counted since the user's read receipt.
import type { JoinedRoomSync } from "../../wire/index.ts";
import { isEventId } from "../../wire/index.ts";
import { MAX_THREAD_NOTIFICATION_COUNTS } from "../client-store/index.ts";

export interface NotificationCounts {
  /** Unread events the push rules notify for. */
  readonly notificationCount: number;
  /** Those of them with the highlight tweak (a mention, a keyword). */
  readonly highlightCount: number;
}

export interface UnreadNotifications extends NotificationCounts {
  /**
   * Per thread, by its root's event ID: the counts of threads with any (when the sync filter sets
   * `unread_thread_notifications`; the room's own counts are then the main timeline's). At most
   * `MAX_THREAD_NOTIFICATION_COUNTS`.
   */
  readonly threads: ReadonlyMap<string, NotificationCounts>;
}

export const NO_UNREAD: UnreadNotifications = { notificationCount: 0, highlightCount: 0, threads: new Map() };

const countsOf = (c: { notification_count?: number; highlight_count?: number }): NotificationCounts => ({
  notificationCount: c.notification_count ?? 0,
  highlightCount: c.highlight_count ?? 0,
});

/**
 * The counts after a joined room's entry in a sync response, `prev` when it brings none. A response
 * gives the room's counts whole: a thread it leaves out has none (the spec lets servers leave
 * those out), so the thread counts are replaced along with the room's. Threads past
 * `MAX_THREAD_NOTIFICATION_COUNTS`, those whose key is no event ID (`isEventId`: the `$` sigil, at
 * most `MAX_IDENTIFIER_LENGTH` long, well-formed) and those with no counts are left out. Stored
 * counts come back through here too, so a key an older version kept is dropped on loading.
 */
export function nextUnread(prev: UnreadNotifications, r: JoinedRoomSync): UnreadNotifications {
  const room = r.unread_notifications;
  const threads = r.unread_thread_notifications;
  if (room === undefined && threads === undefined) return prev;
  const out = new Map<string, NotificationCounts>();
  for (const [id, c] of Object.entries(threads ?? {})) {
    if (out.size >= MAX_THREAD_NOTIFICATION_COUNTS) break;
    const counts = countsOf(c);
    if (!isEventId(id) || (counts.notificationCount === 0 && counts.highlightCount === 0)) continue;
    out.set(id, counts);
  }
  // Thread counts alone (a server that sends them without the room's): the room's stay.
  const own = room === undefined ? prev : countsOf(room);
  return { notificationCount: own.notificationCount, highlightCount: own.highlightCount, threads: out };
}

/** Whether two counts are the same. */
export function sameUnread(a: UnreadNotifications, b: UnreadNotifications): boolean {
  if (a.notificationCount !== b.notificationCount || a.highlightCount !== b.highlightCount) return false;
  if (a.threads.size !== b.threads.size) return false;
  for (const [id, c] of a.threads) {
    const d = b.threads.get(id);
    if (d?.notificationCount !== c.notificationCount || d.highlightCount !== c.highlightCount) return false;
  }
  return true;
}
