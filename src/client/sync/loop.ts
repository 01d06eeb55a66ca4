// The long-poll loop: fetch, handle, repeat. Transient failures (network, 429, 5xx, malformed
// bodies, hook failures) back off with jitter and retry forever; a rejected token stops the loop.
//
// Saving pipelines with fetching: once a response is handled (crypto persisted, state applied,
// events emitted), the loop asks for the next one while the work `sync.settle` listeners started
// for it (a bot answering commands) finishes; each response's token is saved after its work, in
// order, so a crash before a save brings its events again. At most `MAX_UNSAVED_RESPONSES` wait.
//
// Where the platform cannot tell a listener's own calls (browsers), a stop asked for no longer
// waits for listeners (listener-waits.ts): a response one of whose listeners it did not wait for
// is not saved, nor any after it, until the loop runs again (what it changed goes with that next
// save), so its events come again at the next start.
import { platform } from "#client-platform";
import { type SyncResponse, syncResponseSchema } from "../../wire/index.ts";
import { type BackoffPolicy, backoffDelay } from "../backoff.ts";
import { mergeSyncChanges, type SyncChanges } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";
import { ClientError, MatrixError, NetworkError } from "../errors.ts";
import { errorSummary } from "../events/emitter.ts";
import type { SyncState, SyncStateInfo } from "../events/types.ts";
import { type HttpClient, MAX_SYNC_RESPONSE_BYTES, path } from "../http.ts";
import { rememberTimeline, withoutEchoes } from "./echo.ts";
import { type HandledSync, handleSyncResponse, type SyncContext } from "./handler.ts";
import { ListenerWaits, ResponseListeners } from "./listener-waits.ts";

/**
 * Server-side long-poll wait; the request timeout is this plus `SYNC_TIMEOUT_GRACE_MS` (with no
 * wait: `CATCH_UP_SYNC_TIMEOUT_MS`), to the response head and then from each chunk of the body to
 * the next.
 */
export const DEFAULT_SYNC_TIMEOUT_MS = 30_000;
export const SYNC_TIMEOUT_GRACE_MS = 15_000;
/**
 * The request timeout of a sync asked for without a long-poll wait (the first one, the catch-up
 * after a restart): the server computes it in full, a big account's in tens of seconds, before
 * its head comes. Its body (up to `MAX_SYNC_RESPONSE_BYTES`) is then timed from chunk to chunk,
 * so a slow link is not cut off however long the whole takes, and a server that stalls for this
 * long is. matrix-js-sdk allows 80 s.
 */
export const CATCH_UP_SYNC_TIMEOUT_MS = 180_000;
/**
 * Handled responses whose token is not saved yet (their `sync.settle` work still running), at
 * most: past it the loop waits for the oldest save before fetching more.
 */
export const MAX_UNSAVED_RESPONSES = 4;
export const SYNC_BACKOFF: BackoffPolicy = Object.freeze({
  baseMs: 1_000,
  maxMs: 60_000,
  maxAttempts: Infinity,
});

export interface SyncLoopOptions {
  http: HttpClient;
  clock: Clock;
  context: SyncContext;
  /** Filter ID or inline filter JSON. */
  filter?: string;
  timeoutMs?: number;
  backoff?: BackoffPolicy;
  /** The token to resume from (loaded from the store). */
  since: string | undefined;
  onSessionRevoked: (softLogout: boolean) => Promise<void>;
}

/**
 * A `/sync` response as the spec (v1.17) reads it: a server may leave `device_one_time_keys_count`
 * out when every count is zero (and an algorithm when its count is; the engine reads that as zero),
 * so no field means "none left". Read as "unknown", a device whose keys were all claimed on such a
 * server never uploaded more. Only for the homeserver's own `/sync`: a response fed by an
 * appservice (`feed`, MSC3202) leaves the counts out when they did not change.
 */
function withOmittedKeyCountsAsZero(res: SyncResponse): SyncResponse {
  return res.device_one_time_keys_count === undefined ? { ...res, device_one_time_keys_count: {} } : res;
}

/** Errors that will not go away by retrying. */
function isFatal(err: unknown): boolean {
  return err instanceof MatrixError && err.httpStatus >= 400 && err.httpStatus < 500 && !err.isRateLimited;
}

export class SyncLoop {
  private state: SyncState = "stopped";
  private since: string | undefined;
  private abort: AbortController | undefined;
  private running: Promise<void> | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  /** Each `syncOnce` under way: what `stop` aborts (their requests) besides the loop's. */
  private readonly oneShots = new Set<AbortController>();
  /**
   * The loop's own work: the loop, each `syncOnce` and `feed`, so the handling of their responses
   * and the listeners it awaits (and what those await or start). A stop asked for from there must
   * not wait for that work, which waits for the stop (`inOwnWork`).
   */
  private readonly work = platform.workContext();
  /**
   * Whether the loop now waits on the server only (its `/sync` request, a back-off), or `serial`
   * work is under way or queued: then (no save waiting on `sync.settle` work either) it waits on no
   * code of the application, and `inOwnWork` is false even for code its work started earlier.
   */
  private waitingOnServer = false;
  private serialWork = 0;
  /** Timeline events emitted from a response another process had handled (see echo.ts). */
  private readonly echo = new Set<string>();
  /**
   * On a store other processes share: when `since` was last known to be the store's sync position
   * too (see `SyncProcessor.handleSyncUnit`). Taken under the lease that reached `since`, not when
   * the next request goes out: a reload in between may be another process's sync of that range.
   */
  private mark: number | undefined;
  /**
   * After a response whose range another process had handled and synced past: the shared position
   * (with the mark it was read under) to sync on from once the events up to it are shown here.
   */
  private rejoin: { position: string; mark: number } | undefined;
  /**
   * After a response applied rooms-only that carried to-device messages: its end, to fetch from
   * (rooms only) once a response from the shared position was handled in full here, so the events
   * up to the shared position are shown too. Not before: a request from that end tells the server
   * that every to-device message up to it was received, and the shared position may be before that
   * end, its later messages handled by no process yet (they come again from the shared position).
   */
  private catchUp: string | undefined;
  /** Saves waiting for their response's `sync.settle` work, oldest first; each one after the one before. */
  private readonly saves: Promise<void>[] = [];
  /** What a failed save did not write: written with the next save (a newer position covers it). */
  private carry: SyncChanges | undefined;
  /** The position the last successful save wrote (at first, the one resumed from). */
  private saved: string | undefined;
  /** A failed save, reported by the next sync (which then backs off). */
  private saveError: { error: unknown } | undefined;
  /**
   * True while a response is handled, until its save is queued: the rooms' state is then part one
   * response, part the next, and a room changed outside sync is saved with that response instead.
   */
  private handling = false;
  /** The position of the last response handled (its save queued), at first the one resumed from. */
  private handled: string | undefined;
  /**
   * Waits for listeners, until a stop is asked for where the work is not tracked (browsers): then
   * the loop no longer waits for the listeners of a response being handled, which wait for the
   * stop when they called it. Renewed when the loop runs again.
   */
  private waits = new ListenerWaits();
  /**
   * A stop did not wait for a listener of a handled response: no position is written from then on
   * (what the saves did not write is kept in `carry`), until the loop runs again.
   */
  private cut = false;

  constructor(private readonly opts: SyncLoopOptions) {
    this.since = opts.since;
    this.saved = opts.since;
    this.handled = opts.since;
  }

  get syncState(): SyncState {
    return this.state;
  }

  get nextBatch(): string | undefined {
    return this.since;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /**
   * One request and its handling. Throws on any failure (the caller decides about retrying). Calls
   * run one at a time: two overlapping syncs from the same token would deliver events twice.
   */
  syncOnce(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    // `stop` (the client closing) aborts its request too, as the loop's.
    this.renewWaits();
    const stopped = new AbortController();
    const onAbort = () => stopped.abort();
    if (opts.signal?.aborted === true) stopped.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    this.oneShots.add(stopped);
    return this.serial(() =>
      this.work.run(async () => {
        await this.syncOnceNow({ ...opts, signal: stopped.signal });
        await this.flushSaves();
        this.throwIfCut();
      }),
    ).finally(() => {
      opts.signal?.removeEventListener("abort", onAbort);
      this.oneShots.delete(stopped);
    });
  }

  /**
   * Handles a response obtained elsewhere (an appservice transaction), in turn with `syncOnce`,
   * and resolves once its position is saved. It continues from the previous position, so it is
   * never handled as an initial sync. Both reject with `ClientError("STOPPED")` when a stop did not
   * wait for the response's listeners (untracked work): its position is not saved.
   */
  feed(res: SyncResponse): Promise<void> {
    this.renewWaits();
    return this.serial(() =>
      this.work.run(async () => {
        await this.handleAndQueue(res, this.since ?? "");
        await this.flushSaves();
        this.since = res.next_batch;
        this.throwIfCut();
      }),
    );
  }

  /** One step of the loop: a response handled and its save queued; waits while too many are unsaved. */
  private step(opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    return this.serial(async () => {
      await this.syncOnceNow(opts);
      while (this.saves.length >= MAX_UNSAVED_RESPONSES) await this.saves[0];
    });
  }

  /** Runs `work` after every earlier sync, feed or step: two at once would deliver events twice. */
  private serial(work: () => Promise<void>): Promise<void> {
    this.serialWork++;
    const run = this.inFlight.then(work).finally(() => {
      this.serialWork--;
    });
    this.inFlight = run.catch(() => {});
    return run;
  }

  /** `wait` (a request to the server, a back-off) marked as what the loop waits on (`inOwnWork`). */
  private async onServer<T>(wait: () => Promise<T>): Promise<T> {
    this.waitingOnServer = true;
    try {
      return await wait();
    } finally {
      this.waitingOnServer = false;
    }
  }

  /**
   * `listening` (an emit) waited for as the loop waits for listeners: until a stop is asked for,
   * where the work is not tracked.
   */
  listened(listening: Promise<void>): Promise<void> {
    if (this.work.tracked) return listening;
    return this.waits.wait(listening).then(() => undefined);
  }

  /** After a stop that asked for none: waits for listeners again, and saves again. */
  private renewWaits(): void {
    const idle = this.running === undefined && this.serialWork === 0 && this.saves.length === 0;
    if (!this.waits.released || !idle) return;
    this.waits = new ListenerWaits();
    this.cut = false;
  }

  private throwIfCut(): void {
    if (this.cut)
      throw new ClientError("STOPPED", "stopped before the response's listeners finished: not saved");
  }

  /** Handles a response and queues its save. */
  private async handleAndQueue(
    res: SyncResponse,
    since: string | undefined,
    shared?: { position: string },
  ): Promise<void> {
    const { context } = this.opts;
    // Untracked work: the response's listeners waited for until a stop is asked for.
    const listeners = this.work.tracked ? undefined : new ResponseListeners(context.emitter, this.waits);
    const ctx = listeners === undefined ? context : { ...context, emitter: listeners };
    this.handling = true;
    try {
      this.queueSave(await handleSyncResponse(ctx, res, since, shared), listeners);
    } finally {
      this.handling = false;
    }
    // A room changed outside sync after the response took its snapshots: saved after it (a failed
    // save leaves it to the next one).
    if (this.opts.context.synced.hasUnsavedRooms) this.saveChangedRooms().catch(() => undefined);
  }

  /**
   * Saves `handled`'s position once its `sync.settle` work and every earlier save are done; not
   * when a stop did not wait for one of its `listeners` (see `cut`).
   */
  private queueSave(handled: HandledSync, listeners?: ResponseListeners): void {
    this.handled = handled.changes.nextBatch;
    const before = this.saves.at(-1) ?? Promise.resolve();
    const save: Promise<void> = before.then(async () => {
      await handled.settled;
      if (listeners?.cut === true) this.cut = true;
      try {
        await this.save(this.carry ? mergeSyncChanges(this.carry, handled.changes) : handled.changes);
      } catch (error) {
        this.saveError ??= { error };
      } finally {
        this.saves.shift();
      }
    });
    this.saves.push(save);
  }

  /**
   * Saves `changes` as they stand now (rooms forgotten since left out, their removal added); what
   * a failed save did not write is kept for the next one.
   */
  private async save(changes: SyncChanges): Promise<void> {
    // Not written after a response whose listeners a stop did not wait for: kept for the next save.
    if (this.cut) {
      this.carry = changes;
      return;
    }
    const { synced, store } = this.opts.context;
    const now = synced.toSave(changes);
    try {
      await store.saveSync(now);
    } catch (error) {
      this.carry = now;
      throw error;
    }
    this.carry = undefined;
    this.saved = now.nextBatch;
    synced.saved(now);
    // Rooms forgotten while this save was written (`saveForgets` left them to it) and no save
    // after it to remove them: removed now, or they would be back after a restart.
    if (this.saves.length <= 1 && synced.hasUnsavedForgets)
      await this.save({ nextBatch: now.nextBatch, rooms: [], accountData: [] });
  }

  /**
   * Removes the rooms forgotten since the last save from the store: now if no save is waiting,
   * else with the next one (not awaited: it may wait for the caller's own `sync.settle` work).
   * Throws if a save made now fails; the next one tries again.
   */
  saveForgets(): Promise<void> {
    if (this.saves.length > 0) return Promise.resolve();
    return this.queueAwaitedSave(Promise.resolve(), async () => {
      const position = this.carry?.nextBatch ?? this.saved;
      // Nothing saved yet: the store has no rooms to remove.
      if (position === undefined || !this.opts.context.synced.hasUnsavedForgets) return;
      await this.save(this.carry ?? { nextBatch: position, rooms: [], accountData: [] });
    });
  }

  /**
   * Saves the rooms whose state changed outside sync (`SyncedState.changedOutsideSync`: a member
   * list fetched) with the position of the last response handled, after the saves queued before;
   * resolves once every save queued up to now is done, and throws if this one failed (what it did
   * not write goes with the next save). While a response is handled they are left to its save,
   * which takes them.
   */
  saveChangedRooms(): Promise<void> {
    const { synced } = this.opts.context;
    const position = this.handled;
    const last = this.saves.at(-1);
    if (this.handling || position === undefined || !synced.hasUnsavedRooms) return last ?? Promise.resolve();
    // Taken now: the rooms as they are at `position` (no response is half applied).
    const changes: SyncChanges = { nextBatch: position, rooms: synced.takeUnsavedRooms(), accountData: [] };
    return this.queueAwaitedSave(last ?? Promise.resolve(), () =>
      this.save(this.carry ? mergeSyncChanges(this.carry, changes) : changes),
    );
  }

  /**
   * Queues `work` after `before` as a save (the queue `sync.stop` and the next responses wait on);
   * resolves once it is done and throws what it threw, without failing the queue.
   */
  private queueAwaitedSave(before: Promise<void>, work: () => Promise<void>): Promise<void> {
    let failed: { error: unknown } | undefined;
    const save: Promise<void> = before.then(async () => {
      try {
        await work();
      } catch (error) {
        failed = { error };
      } finally {
        this.saves.shift();
      }
    });
    this.saves.push(save);
    return save.then(() => {
      if (failed !== undefined) throw failed.error;
    });
  }

  /** Waits for every queued save; throws the error of one that failed (what it left is kept). */
  private async flushSaves(): Promise<void> {
    while (this.saves.length > 0) await this.saves.at(-1);
    const failed = this.saveError;
    this.saveError = undefined;
    if (failed !== undefined) throw failed.error;
  }

  private async syncOnceNow(opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    // A save that failed since the last request: reported, so the loop backs off (what it did not
    // write goes with the next save).
    const failed = this.saveError;
    this.saveError = undefined;
    if (failed !== undefined) throw failed.error;
    this.mark ??= this.opts.context.processor()?.syncMark?.();
    const wait = opts.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS;
    // A catch-up (see `rejoin`, `catchUp`) only needs what the server has now: no long-poll wait.
    const pending = this.rejoin !== undefined || this.catchUp !== undefined;
    let full = await this.fetchAndHandle(this.since === undefined || pending ? 0 : wait, opts.signal);
    if (this.rejoin !== undefined) full = await this.fetchAndHandle(0, opts.signal);
    else if (!full && this.catchUp !== undefined) full = await this.fetchAndHandle(0, opts.signal);
    const from = this.catchUp;
    if (full && from !== undefined) await this.fetchAndHandle(0, opts.signal, from);
  }

  /**
   * Fetches from `since` (from `catchUp`, rooms only, when given) and handles the response.
   * Resolves true when it was handled in full here (not a range another process had handled).
   */
  private async fetchAndHandle(
    timeout: number,
    signal: AbortSignal | undefined,
    catchUp?: string,
  ): Promise<boolean> {
    const processor = this.opts.context.processor();
    const res = await this.onServer(() =>
      this.opts.http.request({
        method: "GET",
        path: path`/_matrix/client/v3/sync`,
        query: { since: catchUp ?? this.since, timeout, filter: this.opts.filter },
        schema: syncResponseSchema,
        ...(platform.syncFastParse !== undefined ? { fastParse: platform.syncFastParse } : {}),
        maxResponseBytes: MAX_SYNC_RESPONSE_BYTES,
        timeoutMs: timeout === 0 ? CATCH_UP_SYNC_TIMEOUT_MS : timeout + SYNC_TIMEOUT_GRACE_MS,
        // The body (up to MAX_SYNC_RESPONSE_BYTES) is timed from chunk to chunk: a big first sync
        // on a slow link arrives; a server that stalls still times out.
        timeoutPerChunk: true,
        ...(signal ? { signal } : {}),
      }),
    );
    const since = catchUp ?? this.since;
    const fresh = withoutEchoes(withOmittedKeyCountsAsZero(res), this.echo);
    const handle = (shared?: { position: string }) => this.handleAndQueue(fresh, since, shared);
    if (processor?.handleSyncUnit === undefined) {
      await handle();
      this.echo.clear();
      this.since = res.next_batch;
      this.rejoin = undefined;
      this.catchUp = undefined;
      return true;
    }
    const rejoin = this.rejoin;
    // A catch-up starts from a position not known to be the store's: the unit compares it.
    const unit = await processor.handleSyncUnit(
      since,
      rejoin === undefined && catchUp === undefined ? this.mark : undefined,
      handle,
    );
    this.rejoin = undefined;
    if (catchUp !== undefined) {
      // Shown up to now. The position stays the one the last full handling reached (the server
      // holds the to-device messages after it), unless the store was at this catch-up's start.
      this.catchUp = undefined;
      rememberTimeline(this.echo, fresh);
      if (unit.moved !== undefined) return false;
      this.since = res.next_batch;
      this.mark = unit.mark;
      return true;
    }
    if (unit.moved === undefined) {
      // With a catch-up to come, what was shown here may come again in it.
      if (this.catchUp === undefined) this.echo.clear();
      else rememberTimeline(this.echo, fresh);
      this.since = res.next_batch;
      this.mark = unit.mark;
      return true;
    }
    // Another process sharing the crypto store handled this range (its to-device messages too):
    // its rooms were applied here; the timeline events shown are not shown again if they come back.
    this.opts.context.logger.info({}, "sync position moved by another process; syncing on from it");
    rememberTimeline(this.echo, fresh);
    if (unit.moved === res.next_batch) {
      this.since = res.next_batch;
      this.mark = unit.mark;
    } else if (rejoin !== undefined) {
      // This catch-up was asked for after `rejoin` was read, so it reached at least that far.
      this.since = rejoin.position;
      this.mark = rejoin.mark;
    } else if (this.catchUp !== undefined || (res.to_device?.events?.length ?? 0) > 0) {
      // Its to-device messages after the shared position (which may be before this response's
      // end) no process handled: sync on from the shared position at once, where they come again,
      // and only then catch up from this response's end (see `catchUp`).
      this.since = unit.moved;
      this.mark = unit.mark;
      this.catchUp ??= res.next_batch;
    } else {
      // The shared position may be past this response's end (the other process synced on): the
      // events in between were never shown here. Fetch from this response's end first (rooms only;
      // it carried no to-device message to lose) and only then sync on from the shared position;
      // what comes twice is dropped (echo.ts).
      this.since = res.next_batch;
      this.rejoin = { position: unit.moved, mark: unit.mark };
    }
    return false;
  }

  /**
   * Starts the loop; resolves once the first response (asked for without a long-poll wait) was
   * handled, rejects if that failed fatally.
   */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.renewWaits();
    const abort = new AbortController();
    this.abort = abort;
    let firstDone: () => void = () => {};
    let firstFailed: (err: unknown) => void = () => {};
    const first = new Promise<void>((resolve, reject) => {
      firstDone = resolve;
      firstFailed = reject;
    });
    this.running = this.work
      .run(() => this.run(abort.signal, firstDone, firstFailed))
      .finally(() => {
        this.running = undefined;
        // A stop before the first response still settles `first`.
        firstDone();
      });
    return first;
  }

  /**
   * Stops the loop, aborting the in-flight long-poll (and a `syncOnce`'s request); resolves when
   * the loop has exited and a response already received (the loop's, a `syncOnce`'s or `feed`'s)
   * is handled and saved, so the store can close after it.
   */
  async stop(): Promise<void> {
    this.requestStop();
    await this.running;
    await this.inFlight;
  }

  /**
   * What `stop` does without waiting: the loop ends (and a `syncOnce`'s request fails) once the
   * response being handled is handled and saved. Where the work is not tracked (browsers), the
   * listeners of the responses being handled are no longer waited for, and those responses are
   * not saved (see `cut`).
   */
  requestStop(): void {
    this.abort?.abort();
    for (const oneShot of this.oneShots) oneShot.abort();
    if (!this.work.tracked) this.waits.release();
  }

  /**
   * Whether the code running now is the loop's own work (a listener of a response being handled,
   * or what it awaits): `stop` awaited there waits for itself. Always false where the platform
   * cannot tell (browsers). False too while the loop waits on nothing of the application (only on
   * the server, or stopped with nothing under way): code its work started earlier and left running
   * (a timer a listener set) is then not waited for by the loop, and waits for the stop as others do.
   */
  get inOwnWork(): boolean {
    if (!this.work.active || this.saves.length > 0) return this.work.active;
    const idle = this.running === undefined && this.serialWork === 0;
    return !(this.waitingOnServer || idle);
  }

  /** Runs `fn` as not the loop's work (see `inOwnWork`): what it starts does not count as it either. */
  outsideOwnWork<T>(fn: () => T): T {
    return this.work.exit(fn);
  }

  private async setState(state: SyncState, info: SyncStateInfo = {}): Promise<void> {
    const prev = this.state;
    this.state = state;
    if (state !== prev || state === "backoff")
      await this.listened(this.opts.context.emitter.emit("sync", state, prev, info));
  }

  private async run(
    signal: AbortSignal,
    firstDone: () => void,
    firstFailed: (e: unknown) => void,
  ): Promise<void> {
    const { logger, emitter } = this.opts.context;
    const policy = this.opts.backoff ?? SYNC_BACKOFF;
    let failures = 0;
    await this.setState("initial");
    // The first request catches up without waiting (timeout 0), so `start()` resolves promptly when
    // resuming from a stored token (a page reload) instead of after a full long-poll.
    let first = true;
    while (!signal.aborted) {
      try {
        await this.step({ signal, ...(first ? { timeoutMs: 0 } : {}) });
        // `start()` resolves with the first response saved.
        if (first) await this.serial(() => this.flushSaves());
        first = false;
        failures = 0;
        await this.setState("syncing", this.since !== undefined ? { nextBatch: this.since } : {});
        firstDone();
      } catch (err) {
        if (signal.aborted) break;
        // The client's own signal (its `signal` option) was aborted: every request is refused from
        // now on, so backing off and retrying would go on for ever. The loop stops; a `start()`
        // still waiting for its first response fails with the error.
        if (this.opts.http.aborted) {
          firstFailed(err);
          break;
        }
        await this.listened(emitter.emit("error", err));
        if (isFatal(err)) {
          logger.error({ err: errorSummary(err) }, "sync stopped");
          // The positions of responses already handled are saved before a revoked session is
          // forgotten: saved after, they would land in the cleared store.
          await this.flushAtStop();
          if (err instanceof MatrixError && err.errcode === "M_UNKNOWN_TOKEN") {
            await this.opts.onSessionRevoked(err.body.soft_logout === true);
          }
          await this.setState("error", { error: err });
          firstFailed(err);
          return;
        }
        const delay = backoffDelay(policy, failures, err, this.opts.clock.random);
        failures++;
        logger.warn({ err: errorSummary(err), failures, delayMs: delay }, "sync failed, backing off");
        await this.setState("backoff", { error: err, retryInMs: delay });
        try {
          await this.onServer(() => this.opts.clock.sleep(delay, signal));
        } catch (e) {
          if (e instanceof NetworkError && e.code === "ABORTED") break;
          throw e;
        }
      }
    }
    await this.flushAtStop();
    await this.setState("stopped");
  }

  /**
   * Stopping lets the work of handled responses finish and saves their positions (what a failed
   * save left gets one more try).
   */
  private flushAtStop(): Promise<void> {
    return this.serial(async () => {
      await this.flushSaves().catch(() => undefined);
      if (this.carry !== undefined) await this.save(this.carry);
    }).catch((err) =>
      this.opts.context.logger.warn({ err: errorSummary(err) }, "saving the sync position failed at stop"),
    );
  }
}
