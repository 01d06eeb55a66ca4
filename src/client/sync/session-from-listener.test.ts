// logout(), restore() and login() awaited from a listener of the sync response being handled (a
// bot's `!logout`): each stopped the loop and waited for that handling, which waited for the
// listener, so none returned. From there a logout now returns at once and goes on once the
// response is handled and saved (the session cleared after that save); a restore or login, which
// would replace the session under the handling, is refused with ClientError("IN_SYNC_HANDLING").
// The `timeout`s only end a deadlocked test (which otherwise never finishes); no step is timed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";
import { ClientError } from "../errors.ts";
import type { SyncState } from "../events/types.ts";

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
              event_id: "$1",
              type: "m.room.message",
              sender: "@bob:hs",
              origin_server_ts: 2,
              content: { msgtype: "m.text", body: "!logout" },
            },
          ],
          prev_batch: "p0",
        },
      },
    },
  },
};

const json = (body: unknown) =>
  new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });

/**
 * A client whose first /sync gets `response` and any later one waits until aborted. `log` records,
 * in order, each save of a sync position, the /logout request, the session's clear and the
 * store's close.
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
  const clear = store.clear.bind(store);
  store.clear = async () => {
    await clear();
    log.push("cleared");
  };
  (store as ClientStore).close = async () => void log.push("closed");
  let syncs = 0;
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const signal = init.signal as AbortSignal;
    const { pathname } = new URL(url);
    if (pathname.endsWith("/logout")) {
      log.push("logout");
      return json({});
    }
    if (pathname.endsWith("/login")) return json({ user_id: "@me:hs", device_id: "DEV", access_token: "t2" });
    syncs += 1;
    if (syncs > 1) {
      await new Promise<void>((_, reject) => {
        if (signal.aborted) reject(new Error("aborted"));
        signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    }
    return json(response);
  };
  const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock });
  await c.restore();
  return { client: c, log };
}

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

type Call = "logout" | "restore" | "login";

/** A `room.event` listener that awaits `call` once; resolves with what it threw (or undefined). */
function callFrom(c: MatrixClient, call: Call): Promise<unknown> {
  return new Promise((resolve) => {
    let done = false;
    c.on("room.event", async () => {
      if (done) return;
      done = true;
      try {
        if (call === "logout") await c.logout();
        else if (call === "restore") await c.restore();
        else await c.login({ user: "@me:hs", password: "pw" });
        resolve(undefined);
      } catch (e) {
        resolve(e);
      }
    });
  });
}

describe("logout(), restore() or login() awaited from a listener of the response being handled", () => {
  for (const how of ["the loop", "syncOnce"] as const) {
    const sync = (c: MatrixClient) => (how === "the loop" ? c.startSync() : c.syncOnce({ timeoutMs: 0 }));

    it(
      `${how}: logout() returns; the response is saved, then the session is logged out and cleared`,
      DEADLOCK,
      async () => {
        const { client: c, log } = await client();
        const returned = callFrom(c, "logout");
        const stopped = how === "the loop" ? reaches(c, "stopped") : Promise.resolve();
        const syncing = sync(c);
        assert.equal(await returned, undefined);
        await syncing;
        await stopped;
        // From outside: the logout under way is waited for, not made again.
        await c.logout();
        assert.equal(c.isLoggedIn, false);
        await c.close();
        assert.deepEqual(log, ["saved s1", "logout", "cleared", "closed"]);
      },
    );

    it(`${how}: a close() from outside waits for the listener's logout`, DEADLOCK, async () => {
      const { client: c, log } = await client();
      const returned = callFrom(c, "logout");
      const syncing = sync(c);
      await returned;
      await c.close();
      await syncing;
      assert.equal(c.isLoggedIn, false);
      assert.deepEqual(log, ["saved s1", "logout", "cleared", "closed"]);
    });

    for (const call of ["restore", "login"] as const) {
      it(
        `${how}: ${call}() is refused with IN_SYNC_HANDLING, and the session and loop go on`,
        DEADLOCK,
        async () => {
          const { client: c, log } = await client();
          const returned = callFrom(c, call);
          const syncing = sync(c);
          const error = await returned;
          assert.ok(error instanceof ClientError && error.code === "IN_SYNC_HANDLING", String(error));
          await syncing;
          assert.equal(c.isLoggedIn, true);
          await c.close();
          assert.deepEqual(log, ["saved s1", "closed"]);
        },
      );
    }
  }

  it("a restore() from outside after a listener's logout waits for that logout", DEADLOCK, async () => {
    const { client: c, log } = await client();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let loggedOut: () => void = () => {};
    const asked = new Promise<void>((resolve) => {
      loggedOut = resolve;
    });
    c.on("room.event", async () => {
      await c.logout();
      loggedOut();
      await gate;
    });
    const syncing = c.startSync();
    await asked;
    const restoring = c.restore();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(log, []);
    release();
    // The session was cleared by the logout first: nothing left to restore.
    await assert.rejects(restoring, (e: unknown) => e instanceof ClientError && e.code === "NOT_LOGGED_IN");
    await syncing;
    await c.close();
    assert.deepEqual(log, ["saved s1", "logout", "cleared", "closed"]);
  });
});
