// logout(), restore() and login() awaited from a listener of the sync response being handled (a
// bot's `!logout`): each stopped the loop and waited for that handling, which waited for the
// listener, so none returned. From there a logout now returns at once and goes on once the
// response is handled and saved (the session cleared after that save); a restore or login, which
// would replace the session under the handling, is refused with ClientError("IN_SYNC_HANDLING").
// The `timeout`s only end a deadlocked test (which otherwise never finishes); no step is timed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MatrixClient } from "../client.ts";
import { ClientError } from "../errors.ts";
import {
  bobSays,
  DEADLOCK,
  firstSyncThenHold,
  holdingListener,
  json,
  loggedStore,
  nextTurn,
  oneRoomSync,
  reaches,
} from "../test-support/held-sync.ts";
import { INSTANT_CLOCK, restoredMemoryClient } from "../test-support/scripted-sync.ts";
import type { FetchLike } from "../transport.ts";

/**
 * A client whose first /sync gets a one-room response and any later one waits until aborted. `log`
 * records, in order, each save of a sync position, the /logout request, the session's clear and
 * the store's close.
 */
async function client() {
  const log: string[] = [];
  const store = loggedStore(log, ["saveSync", "clear", "close"]);
  const sync = firstSyncThenHold(oneRoomSync(bobSays("!logout")));
  const fetch: FetchLike = async (url, init) => {
    const { pathname } = new URL(url);
    if (pathname.endsWith("/logout")) {
      log.push("logout");
      return json({});
    }
    if (pathname.endsWith("/login")) return json({ user_id: "@me:hs", device_id: "D", access_token: "t2" });
    return sync(url, init);
  };
  const c = await restoredMemoryClient({ store, fetch, clock: INSTANT_CLOCK });
  return { client: c, log };
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
    const { entered: loggedOut, release } = holdingListener(c, { before: () => c.logout() });
    const syncing = c.startSync();
    await loggedOut;
    const restoring = c.restore();
    await nextTurn();
    assert.deepEqual(log, []);
    release();
    // The session was cleared by the logout first: nothing left to restore.
    await assert.rejects(restoring, (e: unknown) => e instanceof ClientError && e.code === "NOT_LOGGED_IN");
    await syncing;
    await c.close();
    assert.deepEqual(log, ["saved s1", "logout", "cleared", "closed"]);
  });
});
