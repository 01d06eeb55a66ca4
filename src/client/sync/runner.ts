// The sync part of the client: one loop per session (made when a session starts, dropped when it
// ends), started, stopped, fed or stepped on the client's behalf, and the gap fill it uses.
import {
  type ClientEvent,
  type JsonObject,
  type MessagesResponse,
  messagesResponseSchema,
  type SyncResponse,
} from "../../wire/index.ts";
import type { BackoffPolicy } from "../backoff.ts";
import type { ApiCall } from "../call.ts";
import type { ClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";
import { ClientError, MatrixError } from "../errors.ts";
import { errorSummary, type TypedEmitter } from "../events/emitter.ts";
import type { ClientEventMap, SyncState } from "../events/types.ts";
import { type HttpClient, path } from "../http.ts";
import type { Logger } from "../logger.ts";
import type { Room } from "../rooms/room.ts";
import { membershipOf } from "./handler.ts";
import type { FetchedMember, SyncProcessor } from "./hooks.ts";
import { SyncLoop } from "./loop.ts";
import type { SyncedState } from "./state.ts";

/** Most events fetched to fill one room's timeline gap in one sync response. */
export const MAX_GAP_FILL_EVENTS = 1000;
const GAP_PAGE_SIZE = 100;
/**
 * Most `/messages` pages read for one gap: full pages reach `MAX_GAP_FILL_EVENTS` in half of them;
 * the rest leaves room for pages the server left empty or short (events it does not show us, such
 * as an ignored user's), past which the fill goes on while the server gives a token.
 */
export const MAX_GAP_FILL_PAGES = (2 * MAX_GAP_FILL_EVENTS) / GAP_PAGE_SIZE;

/** The client options the sync part reads. */
export interface SyncOptions {
  /** Filter for `/sync`: a filter ID or a filter object (sent inline). */
  syncFilter?: string | JsonObject;
  /** Server-side long-poll wait per `/sync` request. */
  syncTimeoutMs?: number;
  syncBackoff?: BackoffPolicy;
  /**
   * When a sync timeline is `limited` (more events than it carries, e.g. after downtime), fetch
   * the missing events through `/messages` so none is lost. Default true; at most
   * `MAX_GAP_FILL_EVENTS` per room and response.
   */
  fillTimelineGaps?: boolean;
  /**
   * The session's access token is an application service's `as_token`: every request acts as the
   * session's user and device (identity assertion with device masquerading, MSC3202/MSC4326), and
   * sync data comes from the appservice's transactions through `feedSync`. `keyroom/appservice`
   * sets this up for its virtual users.
   */
  appserviceUser?: boolean;
}

export interface SyncHost {
  readonly http: HttpClient;
  readonly call: ApiCall;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: ClientStore;
  readonly synced: SyncedState;
  readonly emitter: TypedEmitter<ClientEventMap>;
  readonly options: SyncOptions;
  /** Throws when no session is logged in. */
  requireSession(): void;
  /** The E2EE hook of the moment. */
  processor(): SyncProcessor | undefined;
  /** The server rejected the token (`softLogout`: the device is kept). */
  onSessionRevoked(softLogout: boolean): Promise<void>;
}

export class SyncRunner {
  readonly #host: SyncHost;
  #loop: SyncLoop | undefined;

  constructor(host: SyncHost) {
    this.#host = host;
  }

  /** Makes the loop of a session that starts, resuming from `since`. */
  begin(userId: string, since: string | undefined): void {
    const { options: o, http, clock, synced, store, logger, emitter } = this.#host;
    const f = o.syncFilter;
    this.#loop = new SyncLoop({
      http,
      clock,
      since,
      ...(f !== undefined ? { filter: typeof f === "string" ? f : JSON.stringify(f) } : {}),
      ...(o.syncTimeoutMs !== undefined ? { timeoutMs: o.syncTimeoutMs } : {}),
      ...(o.syncBackoff ? { backoff: o.syncBackoff } : {}),
      context: {
        userId,
        synced,
        emitter,
        store,
        logger,
        processor: () => this.#host.processor(),
        ...(o.fillTimelineGaps !== false
          ? { fetchGap: (roomId, from, to) => this.#fetchGap(roomId, from, to) }
          : {}),
      },
      onSessionRevoked: (softLogout) => this.#host.onSessionRevoked(softLogout),
    });
  }

  /**
   * Drops a room the server forgot (`forgetRoom`) here and, after the saves queued before, from
   * the store; `room.forgotten` is emitted either way.
   */
  async forget(roomId: string): Promise<void> {
    const loop = this.#require();
    // Not known (any more): a removal an earlier call could not save is tried again all the same.
    const dropped = this.#host.synced.forget(roomId);
    try {
      await loop.saveForgets();
    } finally {
      if (dropped) await this.#host.emitter.emit("room.forgotten", roomId);
    }
  }

  /**
   * `room`'s member list was fetched (`/members`, before a room key is shared) and corrected the
   * room's state; `news` are the member events that changed it (each with the one it replaced). The
   * room is saved to the client store (now, or with the response being handled), and `news` are
   * emitted as sync emits its state: `room.state`, then `room.member` when the membership differs.
   * Neither is awaited: the fetch is part of a send, which a listener may itself be waiting for.
   */
  membersFetched(room: Room, news: readonly FetchedMember[]): void {
    const { synced, emitter, logger } = this.#host;
    if (synced.room(room.roomId) !== room) return;
    synced.changedOutsideSync(room);
    this.#loop?.saveChangedRooms().catch((err: unknown) => {
      logger.warn({ roomId: room.roomId, err: errorSummary(err) }, "saving a room's fetched members failed");
    });
    if (news.length === 0) return;
    void (async () => {
      for (const { event, previous } of news) {
        await emitter.emit("room.state", room, event, previous);
        const m = membershipOf(event);
        const before = previous === undefined ? undefined : membershipOf(previous);
        if (m !== undefined && m !== before)
          await emitter.emit("room.member", room, event.state_key, m, before);
      }
    })();
  }

  /** Saves the rooms changed outside sync (at close: a send's member fetch after the loop stopped). */
  async saveChangedRooms(): Promise<void> {
    await this.#loop?.saveChangedRooms();
  }

  /** Drops the loop of a session that ended. */
  end(): void {
    this.#loop = undefined;
  }

  #require(): SyncLoop {
    this.#host.requireSession();
    if (!this.#loop) throw new ClientError("NOT_LOGGED_IN", "log in or restore a session first");
    return this.#loop;
  }

  get isAppserviceUser(): boolean {
    return this.#host.options.appserviceUser === true;
  }

  start(): Promise<void> {
    const loop = this.#require();
    if (this.isAppserviceUser) return Promise.resolve();
    return loop.start();
  }

  async stop(): Promise<void> {
    await this.#loop?.stop();
  }

  /**
   * `MatrixClient.stopSync`: `stop`, except from the loop's own work (a listener of a response
   * being handled, or what it awaits), where waiting would wait for itself: the loop is asked to
   * stop, and stops once that response is handled and saved, after the listener returned. Where
   * that work is not known (browsers), `stop`, which there does not wait for listeners
   * (`SyncLoop.requestStop`).
   */
  stopSoon(): Promise<void> {
    const loop = this.#loop;
    if (loop?.inOwnWork !== true) return this.stop();
    loop.requestStop();
    return Promise.resolve();
  }

  /** Asks the loop to stop without waiting (`SyncLoop.requestStop`). */
  requestStop(): void {
    this.#loop?.requestStop();
  }

  /** Whether the code running now is the loop's own work (`SyncLoop.inOwnWork`). */
  get inOwnWork(): boolean {
    return this.#loop?.inOwnWork === true;
  }

  /**
   * Waits for `listening` (the listeners of an event the client emits while the loop may wait for
   * it: `session.loggedOut`, a late decryption's) as the loop waits for listeners: until a stop is
   * asked for, in browsers (`SyncLoop.listened`).
   */
  listened(listening: Promise<void>): Promise<void> {
    return this.#loop?.listened(listening) ?? listening;
  }

  /** Runs `fn` as not the loop's own work (`SyncLoop.outsideOwnWork`). */
  outsideOwnWork<T>(fn: () => T): T {
    const loop = this.#loop;
    return loop === undefined ? fn() : loop.outsideOwnWork(fn);
  }

  async feed(res: SyncResponse): Promise<void> {
    const loop = this.#require();
    if (loop.isRunning)
      throw new ClientError("INVALID_ARGUMENT", "feedSync cannot run while the sync loop runs");
    await loop.feed(res);
  }

  async once(opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    const loop = this.#require();
    if (loop.isRunning)
      throw new ClientError("INVALID_ARGUMENT", "syncOnce cannot run while the sync loop runs");
    await loop.syncOnce(opts);
  }

  get state(): SyncState {
    return this.#loop?.syncState ?? "stopped";
  }

  get nextBatch(): string | undefined {
    return this.#loop?.nextBatch;
  }

  /**
   * The events between sync token `to` and pagination token `from`, oldest first, each once
   * (bounded). It ends at a page token already used: a server pointing back to a page already read
   * made the fill read it again, and show its events again, until the bound.
   */
  async #fetchGap(roomId: string, from: string, to: string): Promise<ClientEvent[]> {
    const out: ClientEvent[] = [];
    const ids = new Set<string>();
    const used = new Set<string>();
    /** Events received, repeated ones included: what bounds the fill. */
    let received = 0;
    let cursor: string | undefined = from;
    while (
      cursor !== undefined &&
      !used.has(cursor) &&
      received < MAX_GAP_FILL_EVENTS &&
      used.size < MAX_GAP_FILL_PAGES
    ) {
      used.add(cursor);
      let res: MessagesResponse;
      try {
        res = await this.#host.call(
          {
            method: "GET",
            path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
            query: {
              dir: "b",
              from: cursor,
              to,
              limit: Math.min(GAP_PAGE_SIZE, MAX_GAP_FILL_EVENTS - received),
            },
            schema: messagesResponseSchema,
          },
          true,
        );
      } catch (err) {
        if (!isRefusal(err)) throw err;
        // Refused for good (e.g. 403 for a room we left, 400 for a token the server does not take
        // as `to`): the gap stays, as without filling. Thrown, it stopped the sync loop (a 4xx is
        // fatal there).
        this.#host.logger.warn(
          { roomId, errcode: err.errcode, fetched: out.length },
          "timeline gap not filled",
        );
        return out.reverse();
      }
      received += res.chunk.length;
      for (const ev of res.chunk) {
        if (ids.has(ev.event_id)) continue;
        ids.add(ev.event_id);
        out.push(ev);
      }
      // An empty page with a token is not the end: the server left out what it does not show us.
      cursor = res.end;
    }
    if (cursor !== undefined && !used.has(cursor))
      this.#host.logger.warn({ roomId, fetched: out.length }, "timeline gap larger than the fill limit");
    return out.reverse();
  }
}

/**
 * A gap page the server refuses for good: a 4xx other than a rate limit or a rejected access
 * token (that one stops the loop, which logs the session out).
 */
function isRefusal(err: unknown): err is MatrixError {
  return (
    err instanceof MatrixError &&
    err.httpStatus >= 400 &&
    err.httpStatus < 500 &&
    !err.isRateLimited &&
    err.errcode !== "M_UNKNOWN_TOKEN" &&
    err.httpStatus !== 401
  );
}
