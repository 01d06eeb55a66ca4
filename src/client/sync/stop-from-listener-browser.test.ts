// `close()`, `stopSync()` or `logout()` awaited from a listener of the response being handled, in a
// browser. There is no async context there (src/client/platform/browser.ts): such a call cannot be
// told from one made elsewhere, so it stopped the loop and waited for the handling, which waited for
// the listener, and never returned. A stop asked for there now stops the loop's waiting for the
// response's listeners (they run on); that response's position is not saved, so its events come
// again at the next start (at-least-once), the store closes, and nothing is written after.
//
// Runs with the browser platform: on Node the one test below starts this file again in a process
// with `--conditions=browser`, where the package's `#client-platform` is browser.ts. The `timeout`s
// only end a deadlocked test (which otherwise never finishes); no step is timed.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { platform } from "#client-platform";
import type { MatrixClient } from "../client.ts";
import { MemoryClientStore, type StoredSession, type SyncChanges } from "../client-store/index.ts";
import { ClientError } from "../errors.ts";
import type { ClientEventMap } from "../events/types.ts";
import type { Logger } from "../logger.ts";
import {
  bobSays,
  DEADLOCK,
  deferred,
  holdingListener,
  json,
  nextTurn,
  oneRoomSync,
  untilAborted,
} from "../test-support/held-sync.ts";
import { INSTANT_CLOCK, restoredMemoryClient } from "../test-support/scripted-sync.ts";
import type { FetchLike } from "../transport.ts";

const join = {
  event_id: "$join",
  type: "m.room.member",
  state_key: "@bob:hs",
  sender: "@bob:hs",
  origin_server_ts: 1,
  content: { membership: "join" },
};
/** Bob's "!quit" (`$1`), then one more message (`$2`) in the same response. */
const response = oneRoomSync(join, bobSays("!quit"), { ...bobSays("still there?", 3), event_id: "$2" });

/**
 * A memory store that, as the IndexedDB one, refuses writes once closed (`ClientError("STORE_CLOSED")`)
 * until `reopen`ed; `log` records each save of a sync position, the session's clear and the close.
 */
class ClosingStore extends MemoryClientStore {
  #closed = false;
  log: string[] = [];

  override async saveSync(changes: SyncChanges): Promise<void> {
    this.#refuseClosed();
    await super.saveSync(changes);
    this.log.push(`saved ${changes.nextBatch}`);
  }
  override async clearIf(ours: (stored: StoredSession | undefined) => boolean): Promise<boolean> {
    this.#refuseClosed();
    return super.clearIf(ours); // logged by `clear`
  }
  override async clear(): Promise<void> {
    this.#refuseClosed();
    await super.clear();
    this.log.push("cleared");
  }
  async close(): Promise<void> {
    this.#closed = true;
    this.log.push("closed");
  }
  /** Opened again, as by a page loaded again: a new log. */
  reopen(): this {
    this.#closed = false;
    this.log = [];
    return this;
  }
  #refuseClosed(): void {
    if (this.#closed) throw new ClientError("STORE_CLOSED", "the store is closed");
  }
}

/**
 * A client on `store` (a new one holding the session and position "s0" unless given) whose /syncs
 * get `bodies` (`response` alone unless given), one each, and any later one waits until aborted;
 * `/logout` is answered (and logged to the store's log). `since` records the position each /sync
 * asked from.
 */
async function client(
  opts: { store?: ClosingStore; logger?: Logger; bodies?: readonly unknown[]; status?: number } = {},
) {
  const since: (string | null)[] = [];
  let store = opts.store;
  if (store === undefined) {
    store = new ClosingStore();
    await store.saveSync({ nextBatch: "s0", rooms: [], accountData: [] });
    store.log = [];
  }
  const { log } = store;
  const bodies = [...(opts.bodies ?? [response])];
  const fetch: FetchLike = async (url, init) => {
    const u = new URL(url);
    if (u.pathname.endsWith("/logout")) {
      log.push("logout");
      return json({});
    }
    since.push(u.searchParams.get("since"));
    const body = bodies.shift();
    if (body === undefined) await untilAborted(init.signal as AbortSignal);
    return json(body, opts.status);
  };
  const c = await restoredMemoryClient({
    store,
    fetch,
    clock: INSTANT_CLOCK,
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
  });
  return { client: c, log, since, store };
}

type Stop = "close" | "stopSync" | "logout";
type Listened = "room.event" | "room.member" | "sync.settle" | "sync";

/**
 * Registers a listener for `event` that awaits `stop` once (on Bob's "!quit" for `room.event`);
 * resolves when that call returned.
 */
function stopFrom(c: MatrixClient, event: Listened, stop: Stop): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const listener = async (...args: unknown[]) => {
      if (done || (event === "sync" && args[0] !== "syncing")) return;
      if (event === "room.event" && (args[1] as { eventId: string }).eventId !== "$1") return;
      done = true;
      await c[stop]();
      resolve();
    };
    c.on(event, listener as (...args: ClientEventMap[typeof event]) => Promise<void>);
  });
}

const isStopped = (e: unknown) => e instanceof ClientError && e.code === "STOPPED";

/** The tests themselves, run where the platform is the browser one. */
function browserTests(): void {
  describe("in a browser: a stop awaited from a listener of the response being handled", () => {
    for (const how of ["the loop", "syncOnce"] as const) {
      for (const event of ["room.event", "room.member", "sync.settle", "sync"] as const) {
        if (how === "syncOnce" && event === "sync") continue; // syncOnce emits no sync state
        // The loop emits `syncing` once the first response is saved: that one is not cut short.
        const saved = event === "sync" ? ["saved s1"] : [];
        for (const stop of ["close", "stopSync"] as const) {
          it(
            `${how}, a ${event} listener awaiting ${stop}(): returns${stop === "close" ? " with the store closed" : ""}, the response ${saved.length > 0 ? "saved" : "not saved"}`,
            DEADLOCK,
            async () => {
              const { client: c, log } = await client();
              const returned = stopFrom(c, event, stop);
              const syncing = how === "the loop" ? c.startSync() : c.syncOnce({ timeoutMs: 0 });
              const outcome = syncing.then(
                () => "resolved",
                (e: unknown) => (isStopped(e) ? "STOPPED" : e),
              );
              await returned;
              assert.deepEqual(log, stop === "close" ? [...saved, "closed"] : saved);
              // A syncOnce whose response was cut short says so; the loop's start had resolved.
              assert.equal(await outcome, how === "syncOnce" ? "STOPPED" : "resolved");
              assert.equal(c.syncState, "stopped");
              if (stop === "stopSync") await c.close();
              assert.deepEqual(log, [...saved, "closed"]);
            },
          );
        }
      }
    }

    it(
      "the response comes again at the next start, from the position saved before it",
      DEADLOCK,
      async () => {
        const first = await client();
        const returned = stopFrom(first.client, "room.event", "close");
        await first.client.startSync();
        await returned;
        const again = await client({ store: first.store.reopen() });
        const quits: string[] = [];
        again.client.on("room.event", (_room, ev) => void quits.push(ev.eventId));
        await again.client.startSync();
        await again.client.close();
        assert.deepEqual(first.since.slice(0, 1), ["s0"]);
        assert.deepEqual(again.since.slice(0, 1), ["s0"]);
        assert.deepEqual(quits, ["$join", "$1", "$2"]);
        assert.deepEqual(again.log, ["saved s1", "closed"]);
      },
    );

    it(
      "logout() returns; the session is logged out and cleared, the response not saved",
      DEADLOCK,
      async () => {
        const { client: c, log } = await client();
        const returned = stopFrom(c, "room.event", "logout");
        await c.startSync();
        await returned;
        assert.equal(c.isLoggedIn, false);
        await c.close();
        assert.deepEqual(log, ["logout", "cleared", "closed"]);
      },
    );

    it(
      "the listener runs on after the close: the response's later events still reach listeners, a failure is reported, a later call gets a typed error",
      DEADLOCK,
      async () => {
        const failures: unknown[] = [];
        const logger: Logger = {
          debug: () => {},
          info: () => {},
          warn: () => {},
          error: (obj, msg) => void (msg === "event listener failed" && failures.push(obj)),
        };
        const { client: c, log } = await client({ logger });
        const later = deferred<unknown>();
        const seen: string[] = [];
        c.on("room.event", async (_room, ev) => {
          seen.push(ev.eventId);
          if (ev.eventId !== "$1") return;
          await c.close();
          log.push("close returned");
          // The store is closed: a call that writes to it fails with the store's typed error.
          later.resolve(
            await c.logout().then(
              () => undefined,
              (e: unknown) => e,
            ),
          );
          throw new Error("failing after the close");
        });
        await c.startSync();
        const error = await later.promise;
        assert.ok(error instanceof ClientError && error.code === "STORE_CLOSED", String(error));
        assert.deepEqual(seen, ["$join", "$1", "$2"]);
        assert.deepEqual(log, ["closed", "close returned", "logout"]);
        // Reported as any failing listener is, once it failed.
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(failures.length, 1);
      },
    );

    it(
      "a close from outside while a listener runs does not wait for it: the store closes, the response is not saved",
      DEADLOCK,
      async () => {
        const { client: c, log } = await client();
        const { entered, release } = holdingListener(c);
        const syncing = c.startSync();
        await entered;
        await c.close();
        assert.deepEqual(log, ["closed"]);
        release();
        await syncing;
        await nextTurn();
        assert.deepEqual(log, ["closed"]);
      },
    );

    it(
      "after a stopSync() from a listener, the loop started again saves on: the next save holds the response",
      DEADLOCK,
      async () => {
        const next = { next_batch: "s2" };
        const { client: c, log, since } = await client({ bodies: [response, next] });
        const returned = stopFrom(c, "room.event", "stopSync");
        await c.startSync();
        await returned;
        assert.deepEqual(log, []);
        await c.startSync();
        await c.close();
        assert.deepEqual(since.slice(0, 2), ["s0", "s1"]);
        assert.deepEqual(log, ["saved s2", "closed"]);
        // The room the unsaved response brought went with that save.
        const again = await client({ store: (c.store as ClosingStore).reopen(), bodies: [] });
        assert.ok(again.client.getRoom("!r:hs") !== undefined);
        await again.client.close();
      },
    );

    it(
      "a session.loggedOut listener awaiting close() (a soft logout: the loop is kept) returns",
      DEADLOCK,
      async () => {
        const soft = { errcode: "M_UNKNOWN_TOKEN", error: "gone", soft_logout: true };
        const { client: c, log } = await client({ bodies: [soft], status: 401 });
        const returned = new Promise<void>((resolve) => {
          c.on("session.loggedOut", async () => {
            await c.close();
            resolve();
          });
        });
        const failed = c.startSync().catch(() => undefined);
        await returned;
        assert.deepEqual(log, ["closed"]);
        await failed;
      },
    );
  });
}

if (platform.name === "browser") browserTests();
else {
  it("runs with the browser platform (this file in a process with --conditions=browser)", async () => {
    // A test run of its own, reporting to its stdout.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const file = fileURLToPath(import.meta.url);
    const args = ["--conditions=browser", "--conditions=source", "--import", "tsx"];
    const child = spawn(process.execPath, [...args, "--test", "--test-reporter=tap", file], { env });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.on("data", (d: Buffer) => chunks.push(d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    const out = Buffer.concat(chunks).toString();
    assert.equal(code, 0, out);
    assert.match(out, /^# fail 0$/m);
    assert.doesNotMatch(out, /^# pass 0$/m);
  });
}
