// Pieces for tests of what a client does while a /sync is held or its response is handled (a stop,
// a logout, a revoked token): a store that logs its writes, a one-room response, a fetch that
// answers the first /sync and holds the later ones, and promises to hold or await a step with.
import type { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import type { SyncState } from "../events/types.ts";
import type { FetchLike } from "../transport.ts";

/** The test option that only ends a deadlocked test (which otherwise never finishes); no step is timed. */
export const DEADLOCK = { timeout: 60_000 } as const;

/** A promise with its resolve function, to hold a step until the test lets it go. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves after one turn of the event loop: what runs without waiting on anything has run. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A JSON response with `body` (status 200 unless given). */
export const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** A text message `body` from "@bob:hs" in the room, with event ID `$1` and timestamp `ts`. */
export const bobSays = (body: string, ts = 2) => ({
  event_id: "$1",
  type: "m.room.message",
  sender: "@bob:hs",
  origin_server_ts: ts,
  content: { msgtype: "m.text", body },
});

/** A /sync response at position "s1" with `events` in the timeline of the joined room "!r:hs". */
export const oneRoomSync = (...events: readonly object[]) => ({
  next_batch: "s1",
  rooms: { join: { "!r:hs": { timeline: { events, prev_batch: "p0" } } } },
});

/** A store write a `logWrites` log can record. */
export type LoggedWrite = "saveSync" | "clear" | "clearIf" | "close";

/**
 * Makes `store` push to `log`, once each of the `writes` is done: "saved <position>" for a
 * saveSync, "cleared" for a clear or clearIf, "closed" for a close (which does nothing else: the
 * store stays usable, so a write after it shows in the log).
 */
export function logWrites<S extends ClientStore>(store: S, log: string[], writes: readonly LoggedWrite[]): S {
  const s: ClientStore = store;
  if (writes.includes("saveSync")) {
    const saveSync = s.saveSync.bind(s);
    s.saveSync = async (changes) => {
      await saveSync(changes);
      log.push(`saved ${changes.nextBatch}`);
    };
  }
  if (writes.includes("clear")) {
    const clear = s.clear.bind(s);
    s.clear = async () => {
      await clear();
      log.push("cleared");
    };
  }
  const clearIf = s.clearIf?.bind(s);
  if (writes.includes("clearIf")) {
    if (clearIf === undefined) throw new Error("this store has no clearIf to log");
    s.clearIf = async (ours) => {
      const cleared = await clearIf(ours);
      log.push("cleared");
      return cleared;
    };
  }
  if (writes.includes("close")) s.close = async () => void log.push("closed");
  return store;
}

/** A new memory store logging `writes` to `log` (see `logWrites`). */
export const loggedStore = (log: string[], writes: readonly LoggedWrite[]): MemoryClientStore =>
  logWrites(new MemoryClientStore(), log, writes);

/** Rejects once `signal` is aborted (at once when it already is): a server that never answers. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(new Error("aborted"));
    signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
  });
}

/**
 * A fetch answering the first request with `body` (once `first` resolved, when given) and holding
 * each later one until aborted (`onLater` called as it comes).
 */
export function firstSyncThenHold(
  body: unknown,
  hooks: { first?: (signal: AbortSignal) => Promise<void>; onLater?: () => void } = {},
): FetchLike {
  let requests = 0;
  return async (_url, init) => {
    const signal = init.signal as AbortSignal;
    requests += 1;
    if (requests === 1 && hooks.first) await hooks.first(signal);
    if (requests > 1) {
      hooks.onLater?.();
      await untilAborted(signal);
    }
    return json(body);
  };
}

/** Resolves once the client's sync state becomes `state`. */
export function reaches(c: MatrixClient, state: SyncState): Promise<void> {
  return new Promise((resolve) => {
    const off = c.on("sync", (now) => {
      if (now === state) {
        off();
        resolve();
      }
    });
  });
}

/**
 * A `room.event` listener that, for each event, runs `before`, resolves `entered`, holds the
 * response's handling until `release` is called, then runs `after`.
 */
export function holdingListener(
  c: MatrixClient,
  steps: { before?: () => Promise<void>; after?: () => Promise<void> } = {},
): { entered: Promise<void>; release: () => void } {
  const entered = deferred();
  const gate = deferred();
  c.on("room.event", async () => {
    await steps.before?.();
    entered.resolve();
    await gate.promise;
    await steps.after?.();
  });
  return { entered: entered.promise, release: () => gate.resolve() };
}
