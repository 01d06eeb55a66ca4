// `close()` or `stopSync()` awaited from a listener of the response being handled (a bot's `!quit`):
// the handling waits for the listener, so a stop that waited for the handling waited for itself and
// never returned. Called from there it now returns at once; the response is handled and saved, then
// the store closes, and nothing is written after. The `timeout`s below only end a deadlocked test
// (which otherwise never finishes); no step is timed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MatrixClient } from "../client.ts";
import type { ClientEventMap } from "../events/types.ts";
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

const response = oneRoomSync(
  {
    event_id: "$join",
    type: "m.room.member",
    state_key: "@bob:hs",
    sender: "@bob:hs",
    origin_server_ts: 1,
    content: { membership: "join" },
  },
  bobSays("!quit"),
);

/**
 * A client whose first /sync gets `response` and any later one waits until aborted. `log` records
 * each save of a sync position and the store's close, in the order they happen.
 */
async function client() {
  const log: string[] = [];
  const store = loggedStore(log, ["saveSync", "close"]);
  const c = await restoredMemoryClient({ store, fetch: firstSyncThenHold(response), clock: INSTANT_CLOCK });
  return { client: c, log };
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
      const store = loggedStore(log, ["close"]);
      const fetch = async (): Promise<Response> =>
        json({ errcode: "M_UNKNOWN_TOKEN", error: "gone", soft_logout: true }, 401);
      const c = await restoredMemoryClient({ store, fetch, clock: INSTANT_CLOCK });
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
    const { entered: closedInside, release } = holdingListener(c, { before: () => c.close() });
    const syncing = c.startSync();
    await closedInside;
    const outside = c.close();
    let outsideDone = false;
    void outside.then(() => (outsideDone = true));
    // The handling still waits for the listener: nothing saved, nothing closed.
    await nextTurn();
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
      const { entered, release } = holdingListener(c, { after: () => c.close() });
      const syncing = c.startSync();
      await entered;
      const outside = c.close();
      release();
      await outside;
      await syncing;
      assert.deepEqual(log, ["saved s1", "closed"]);
    },
  );
});
