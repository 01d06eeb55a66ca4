// `close()` / `stopSync()` from the sync loop's own work return at once (waiting there would wait
// for itself), and own work is told by an async context, which code a listener starts and leaves
// running (a timer, a task it does not await) inherits. Called from such code once the loop waits
// only on the server again, they are not waited for by the loop, so they wait for the stop as a
// call from elsewhere does: `await client.close()` there returned before the store was closed (an
// `await close(); process.exit()` then lost it). The `timeout` only ends a deadlocked test.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";

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
              content: { msgtype: "m.text", body: "!quit later" },
            },
          ],
          prev_batch: "p0",
        },
      },
    },
  },
};

/** A client whose first /sync gets `response`; later ones wait until aborted (`polling` then resolves). */
async function client() {
  const log: string[] = [];
  const store = new MemoryClientStore();
  await store.saveSession({
    homeserverUrl: "https://hs",
    userId: "@me:hs",
    deviceId: "DEV",
    accessToken: "t",
  });
  (store as ClientStore).close = async () => void log.push("closed");
  let requests = 0;
  let polled: () => void = () => {};
  const polling = new Promise<void>((resolve) => {
    polled = resolve;
  });
  const fetch = async (_url: string, init: RequestInit): Promise<Response> => {
    const signal = init.signal as AbortSignal;
    requests += 1;
    if (requests > 1) {
      polled();
      await new Promise<void>((_, reject) => {
        if (signal.aborted) reject(new Error("aborted"));
        signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    }
    return new Response(JSON.stringify(response), { headers: { "content-type": "application/json" } });
  };
  const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock });
  await c.restore();
  return { client: c, log, polling };
}

describe("close() or stopSync() from work a listener started and left running", () => {
  it(
    "close(), once the loop waits on the server again, returns with the store closed",
    DEADLOCK,
    async () => {
      const { client: c, log, polling } = await client();
      let go: () => void = () => {};
      const later = new Promise<void>((resolve) => {
        go = resolve;
      });
      const returned = new Promise<void>((resolve) => {
        c.on("room.event", () => {
          // Not awaited by the listener: runs on in the listener's async context.
          void (async () => {
            await later;
            await c.close();
            log.push("close returned");
            resolve();
          })();
        });
      });
      await c.startSync();
      await polling; // the response is handled and saved; the loop long-polls
      go();
      await returned;
      assert.deepEqual(log, ["closed", "close returned"]);
    },
  );

  it(
    "stopSync(), once the loop waits on the server again, returns with the loop stopped",
    DEADLOCK,
    async () => {
      const { client: c, polling } = await client();
      let go: () => void = () => {};
      const later = new Promise<void>((resolve) => {
        go = resolve;
      });
      const state = new Promise<string>((resolve) => {
        c.on("room.event", () => {
          void (async () => {
            await later;
            await c.stopSync();
            resolve(c.syncState);
          })();
        });
      });
      await c.startSync();
      await polling;
      go();
      assert.equal(await state, "stopped");
      await c.close();
    },
  );
});
