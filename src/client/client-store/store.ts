// The client store: session, sync token and the room state cache. The E2EE layer keeps its own
// crypto store; this one holds only what the client needs to restart without a new device and
// resume sync where it stopped.

import {
  type BasicEvent,
  basicEventSchema,
  type Membership,
  membershipSchema,
  type StateEvent,
  type StrippedStateEvent,
  stateEventSchema,
  strippedStateEventSchema,
} from "../../wire/index.ts";
import * as z from "../../wire/zod.ts";
import { ClientError } from "../errors.ts";

/**
 * What `restore` needs. The access and refresh tokens are secrets: stores must keep them out of logs.
 * The refresh fields are optional (sessions saved before them, servers without refresh tokens),
 * so every back end reads what an older Keyroom saved as it was.
 */
export interface StoredSession {
  homeserverUrl: string;
  userId: string;
  deviceId: string;
  accessToken: string;
  /** The refresh token the server gave with the access token (`refreshTokens`, docs/client.md). */
  refreshToken?: string;
  /** When the access token expires, in ms since the epoch by the client's clock, if the server said. */
  accessTokenExpiresAt?: number;
  /**
   * Set by the client (never by hand): a process or tab sharing the store is trading the refresh
   * token for new tokens now, its random `by`, until `until` (ms since the epoch). The others wait
   * for its tokens instead of spending the refresh token too (`TokenRefresher`).
   */
  refreshClaim?: RefreshClaim;
}

/** A process's claim to refresh a stored session's tokens (`StoredSession.refreshClaim`). */
export interface RefreshClaim {
  by: string;
  until: number;
}

/**
 * Heroes kept of a room summary, at most (the first ones, by the server's order). The spec asks
 * servers for five and allows more; the list is kept per room and stored, so a server's huge list
 * is cut (`Room.heroes`).
 */
export const MAX_ROOM_HEROES = 20;

/**
 * Threads whose unread notification counts are kept per room, at most (`Room.unreadNotifications`):
 * the server sends one entry per thread with any, and a room may have any number of threads.
 */
export const MAX_THREAD_NOTIFICATION_COUNTS = 1_000;

/** A room's unread notification counts as stored (`Room.unreadNotifications`). */
export interface StoredUnreadNotifications {
  notificationCount: number;
  highlightCount: number;
  /** Threads with counts, by their root's event ID (an array: the IDs come from the network). */
  threads?: { threadId: string; notificationCount: number; highlightCount: number }[];
}

/** Everything the client knows about one room, persisted between runs. */
export interface RoomSnapshot {
  roomId: string;
  /** The local user's membership. */
  membership: Membership;
  /**
   * Current state, one event per (type, state_key). Read-only: in the snapshots the client saves
   * (`Room.toSnapshot`) it is the same frozen array for as long as the room's state is unchanged,
   * a new one after any change; a store may skip writing state it wrote as that array
   * (Keyroom's SQLite, IndexedDB and in-memory stores do). A store that wants none of this
   * writes it every time, as before.
   */
  state: StateEvent[];
  /** Stripped state shown with an invite. */
  inviteState?: StrippedStateEvent[];
  /** Per-room account data, one event per type. */
  accountData: BasicEvent[];
  /** Pagination token for history before the first timeline event seen. */
  prevBatch?: string;
  /** The room summary as sync last gave it (`Room.summary`); fields never sent absent. */
  summary?: { heroes?: string[]; joinedMemberCount?: number; invitedMemberCount?: number };
  /** The unread notification counts sync last gave; absent: none given (all 0). */
  unread?: StoredUnreadNotifications;
}

/** The persisted sync position and what it produced. */
export interface SyncSnapshot {
  nextBatch: string;
  rooms: RoomSnapshot[];
  /** Global account data, one event per type. */
  accountData: BasicEvent[];
}

/** One sync response's worth of changes, saved atomically together with its token. */
export interface SyncChanges {
  nextBatch: string;
  /**
   * Full snapshots of the rooms that changed (they replace the stored ones). A room whose state
   * did not change has the `state` array of its previous snapshot (`RoomSnapshot.state`).
   */
  rooms: RoomSnapshot[];
  /** Global account data events that changed. */
  accountData: BasicEvent[];
  /** Rooms to remove (forgotten); never also in `rooms`. */
  forgotten?: string[];
}

export interface ClientStore {
  loadSession(): Promise<StoredSession | undefined>;
  saveSession(session: StoredSession): Promise<void>;
  loadSync(): Promise<SyncSnapshot | undefined>;
  /** Must be atomic: a crash leaves either the old token and rooms or the new ones. */
  saveSync(changes: SyncChanges): Promise<void>;
  /** Forgets everything (logout). */
  clear(): Promise<void>;
  /**
   * Forgets everything when `ours` holds of the stored session (none: `undefined`), in one step no
   * other writer of the store (another tab or process) can come between; true when it did.
   * `ours` is called once, synchronously. A store shared between tabs or processes should have
   * it: without it, a logout checks and then clears, and a session another tab saved in between
   * is lost with it.
   */
  clearIf?(ours: (stored: StoredSession | undefined) => boolean): Promise<boolean>;
  /**
   * Saves `session` when `expected` holds of the stored session (none: `undefined`), in one step
   * no other writer of the store can come between, first forgetting everything else when the
   * stored session is another user's or device's (its sync state is not `session`'s); true when it
   * saved. `expected` is called once, synchronously. A store shared between tabs or processes
   * should have it: without it, a login reads, clears and saves in separate steps, and of two
   * logins at once the second silently replaces the first's session (`Session.adopt`).
   */
  saveSessionIf?(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean>;
  close?(): Promise<void>;
}

export const storedSessionSchema = z.object({
  homeserverUrl: z.string().check(z.minLength(1)),
  userId: z.string().check(z.minLength(1)),
  deviceId: z.string().check(z.minLength(1)),
  accessToken: z.string().check(z.minLength(1)),
  refreshToken: z.optional(z.string().check(z.minLength(1))),
  accessTokenExpiresAt: z.optional(z.number()),
  refreshClaim: z.optional(z.object({ by: z.string().check(z.minLength(1)), until: z.number() })),
});

/** Whether two stored sessions are the same record, every field (tokens and claim included). */
export function sameStoredSession(a: StoredSession | undefined, b: StoredSession | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.homeserverUrl === b.homeserverUrl &&
    a.userId === b.userId &&
    a.deviceId === b.deviceId &&
    a.accessToken === b.accessToken &&
    a.refreshToken === b.refreshToken &&
    a.accessTokenExpiresAt === b.accessTokenExpiresAt &&
    a.refreshClaim?.by === b.refreshClaim?.by &&
    a.refreshClaim?.until === b.refreshClaim?.until
  );
}

const storedCount = z.number().check(z.int(), z.nonnegative());

export const roomSnapshotSchema = z.object({
  roomId: z.string().check(z.minLength(1)),
  membership: membershipSchema,
  state: z.array(stateEventSchema),
  inviteState: z.optional(z.array(strippedStateEventSchema)),
  accountData: z.array(basicEventSchema),
  prevBatch: z.optional(z.string()),
  summary: z.optional(
    z.object({
      heroes: z.optional(z.array(z.string()).check(z.maxLength(MAX_ROOM_HEROES))),
      joinedMemberCount: z.optional(z.number().check(z.int(), z.nonnegative())),
      invitedMemberCount: z.optional(z.number().check(z.int(), z.nonnegative())),
    }),
  ),
  unread: z.optional(
    z.object({
      notificationCount: storedCount,
      highlightCount: storedCount,
      threads: z.optional(
        z
          .array(
            z.object({
              threadId: z.string().check(z.minLength(1)),
              notificationCount: storedCount,
              highlightCount: storedCount,
            }),
          )
          .check(z.maxLength(MAX_THREAD_NOTIFICATION_COUNTS)),
      ),
    }),
  ),
});

export const syncSnapshotSchema = z.object({
  nextBatch: z.string().check(z.minLength(1)),
  rooms: z.array(roomSnapshotSchema),
  accountData: z.array(basicEventSchema),
});

/** A value read back from a persistent store, validated; `STORE_CORRUPT` when it does not fit. */
export function checkStored<T>(
  value: unknown,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  what: string,
): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ClientError("STORE_CORRUPT", `client store: ${what} failed validation`);
  return r.data;
}

/** Applies `changes` to `prev` (pure; used by the stores that keep one document). */
export function applySyncChanges(prev: SyncSnapshot | undefined, changes: SyncChanges): SyncSnapshot {
  const { forgotten: _, ...snapshot } = mergeSyncChanges(
    prev ?? { nextBatch: changes.nextBatch, rooms: [], accountData: [] },
    changes,
  );
  return snapshot;
}

/**
 * A deep copy of JSON data (what snapshots and sync changes hold: wire values), for the stores
 * that keep them in memory. Several times faster than `structuredClone` on a room snapshot, which
 * the in-memory store made for every sync response (bench/README.md, bots section). An own
 * `__proto__` key (which `JSON.parse` can produce) is copied as an own key, as `structuredClone` does.
 */
export function copyJson<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copyJson((value as Record<string, unknown>)[key]);
    if (key === "__proto__")
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out as T;
}

/**
 * One save for two unsaved responses in a row: `newer`'s position, the newest snapshot of each
 * room; a room is forgotten unless `newer` brings it back, and brought back unless `newer` forgets it.
 */
export function mergeSyncChanges(older: SyncChanges, newer: SyncChanges): SyncChanges {
  const rooms = new Map(older.rooms.map((r) => [r.roomId, r]));
  const forgotten = new Set(older.forgotten);
  for (const r of newer.rooms) {
    rooms.set(r.roomId, r);
    forgotten.delete(r.roomId);
  }
  for (const id of newer.forgotten ?? []) {
    rooms.delete(id);
    forgotten.add(id);
  }
  const accountData = new Map(older.accountData.map((e) => [e.type, e]));
  for (const e of newer.accountData) accountData.set(e.type, e);
  return {
    nextBatch: newer.nextBatch,
    rooms: [...rooms.values()],
    accountData: [...accountData.values()],
    ...(forgotten.size > 0 ? { forgotten: [...forgotten] } : {}),
  };
}
