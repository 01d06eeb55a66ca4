// `close()` or `stopSync()` awaited from a listener of the response being handled (a bot's `!quit`):
// the handling waits for the listener, so a stop that waited for the handling waited for itself and
// never returned. Called from there it now returns at once; the response is handled and saved, then
// the store closes, and nothing is written after. The `timeout`s below only end a deadlocked test
// (which otherwise never finishes); no step is timed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";
import type { ClientEventMap, SyncState } from "../events/types.ts";

const clock: Clock = { now: () => 0, random: () => 0.5, sleep: async () => {} };
const DEADLOCK = { timeout: 60_000 };

const response = {
  next_batch: "s1",
  rooms: {
    join: {
      "!r:hs": {
        timeline: {
          events: [
            {
              event_id: "$join",
              type: "m.room.member",
              state_key: "@bob:hs",
              sender: "@bob:hs",
              origin_server_ts: 1,
              content: { membership: "join" },
            },
            {
              event_id: "$1",
              type: "m.room.message",
              sender: "@bob:hs",
              origin_server_ts: 2,
              content: { msgtype: "m.text", body: "!quit" },
            },
          ],
          prev_batch: "p0",
        },
      },
    },
  },
};

/**
 * A client whose first /sync gets `response` and any later one waits until aborted. `log` records
 * each save of a sync position and the store's close, in the order they happen.
 */
async function client() {
  const log: string[] = [];
  const store = new MemoryClientStore();
  await store.saveSession({
    homeserverUrl: "https://hs",
    userId: "@me:hs",
    deviceId: "DEV",
    accessToken: "t",
  });
  const saveSync = store.saveSync.bind(store);
  store.saveSync = async (changes) => {
    await saveSync(changes);
    log.push(`saved ${changes.nextBatch}`);
  };
  (store as ClientStore).close = async () => void log.push("closed");
  let requests = 0;
  const fetch = async (_url: string, init: RequestInit): Promise<Response> => {
    const signal = init.signal as AbortSignal;
    requests += 1;
    if (requests > 1) {
      await new Promise<void>((_, reject) => {
        if (signal.aborted) reject(new Error("aborted"));
        signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    }
    return new Response(JSON.stringify(response), { headers: { "content-type": "application/json" } });
  };
  const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock });
  await c.restore();
  return { client: c, log };
}

/** Resolves once the client's sync state becomes `state`. */
function reaches(c: MatrixClient, state: SyncState): Promise<void> {
  return new Promise((resolve) => {
    const off = c.on("sync", (now) => {
      if (now === state) {
        off();
        resolve();
      }
    });
  });
}

type Stop = "close" | "stopSync";
type Listened = "room.event" | "room.member" | "sync.settle" | "sync";

/** Registers a listener for `event` that awaits `stop` once; resolves when that call returned. */
function stopFrom(c: MatrixClient, event: Listened, stop: Stop): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const listener = async (...args: unknown[]) => {
      if (done || (event === "sync" && args[0] !== "syncing")) return;
      done = true;
      await (stop === "close" ? c.close() : c.stopSync());
      resolve();
    };
    c.on(event, listener as (...args: ClientEventMap[typeof event]) => Promise<void>);
  });
}

describe("close() or stopSync() awaited from a listener of the response being handled", () => {
  for (const how of ["the loop", "syncOnce"] as const) {
    for (const event of ["room.event", "room.member", "sync.settle", "sync"] as const) {
      if (how === "syncOnce" && event === "sync") continue; // syncOnce emits no sync state
      for (const stop of ["close", "stopSync"] as const) {
        it(
          `${how}, a ${event} listener awaiting ${stop}(): returns, the response is saved, then the store closes`,
          DEADLOCK,
          async () => {
            const { client: c, log } = await client();
            const returned = stopFrom(c, event, stop);
            const stopped = how === "the loop" ? reaches(c, "stopped") : Promise.resolve();
            const syncing = how === "the loop" ? c.startSync() : c.syncOnce({ timeoutMs: 0 });
            await returned;
            await syncing;
            await stopped;
            assert.equal(c.syncState, "stopped");
            // From outside: waits for a close under way (or closes).
            await c.close();
            assert.deepEqual(log, ["saved s1", "closed"]);
          },
        );
      }
    }
  }

  it(
    "a session.loggedOut listener awaiting close() (a soft logout: the loop is kept) returns",
    DEADLOCK,
    async () => {
      const log: string[] = [];
      const store = new MemoryClientStore();
      await store.saveSession({
        homeserverUrl: "https://hs",
        userId: "@me:hs",
        deviceId: "DEV",
        accessToken: "t",
      });
      (store as ClientStore).close = async () => void log.push("closed");
      const fetch = async (): Promise<Response> =>
        new Response(JSON.stringify({ errcode: "M_UNKNOWN_TOKEN", error: "gone", soft_logout: true }), {
          status: 401,
          headers: { "content-type": "application/json" },
        });
      const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock });
      await c.restore();
      const returned = new Promise<void>((resolve) => {
        c.on("session.loggedOut", async () => {
          await c.close();
          resolve();
        });
      });
      const failed = c.startSync().catch(() => undefined);
      await returned;
      await failed;
      await c.close();
      assert.deepEqual(log, ["closed"]);
    },
  );

  it("a close from outside while the listener's close goes on waits for it", DEADLOCK, async () => {
    const { client: c, log } = await client();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let closedInside: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      closedInside = resolve;
    });
    c.on("room.event", async () => {
      await c.close();
      closedInside();
      await gate;
    });
    const syncing = c.startSync();
    await inside;
    const outside = c.close();
    let outsideDone = false;
    void outside.then(() => (outsideDone = true));
    // The handling still waits for the listener: nothing saved, nothing closed.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(outsideDone, false);
    assert.deepEqual(log, []);
    release();
    await outside;
    await syncing;
    assert.deepEqual(log, ["saved s1", "closed"]);
  });

  it(
    "a listener's close() while a close from outside goes on is that close: the store closes once",
    DEADLOCK,
    async () => {
      const { client: c, log } = await client();
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let entered: () => void = () => {};
      const inListener = new Promise<void>((resolve) => {
        entered = resolve;
      });
      c.on("room.event", async () => {
        entered();
        await gate;
        await c.close();
      });
      const syncing = c.startSync();
      await inListener;
      const outside = c.close();
      release();
      await outside;
      await syncing;
      assert.deepEqual(log, ["saved s1", "closed"]);
    },
  );
});
