// Closing a client while a sync response is being handled: the handling (listeners, the save of its
// position) finishes before the store closes, whether the response came to the loop or to a
// `syncOnce`, and a `syncOnce` still waiting for its response is aborted rather than waited for.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";
import { NetworkError } from "../errors.ts";

const clock: Clock = { now: () => 0, random: () => 0.5, sleep: async () => {} };

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
              origin_server_ts: 1,
              content: { msgtype: "m.text", body: "hi" },
            },
          ],
          prev_batch: "p0",
        },
      },
    },
  },
};

/**
 * A client whose first /sync gets `response` (once `answer` is called, when `held`), and any
 * later one waits until aborted. `log` records each save of a sync position and the store's close,
 * in the order they complete.
 */
async function client(held = false) {
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
  let asked: (signal: AbortSignal) => void = () => {};
  const firstAsked = new Promise<AbortSignal>((resolve) => {
    asked = resolve;
  });
  let answer: () => void = () => {};
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  const fetch = async (_url: string, init: RequestInit): Promise<Response> => {
    const signal = init.signal as AbortSignal;
    requests += 1;
    if (requests > 1 || held) {
      if (requests === 1) asked(signal);
      await new Promise<void>((resolve, reject) => {
        if (requests === 1) void answered.then(resolve);
        signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    }
    return new Response(JSON.stringify(response), { headers: { "content-type": "application/json" } });
  };
  const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock });
  await c.restore();
  return { client: c, log, firstAsked, answer };
}

/** A `room.event` listener that holds the response's handling until `release` is called. */
function holdHandling(c: MatrixClient): { entered: Promise<void>; release: () => void } {
  let enter: () => void = () => {};
  const entered = new Promise<void>((resolve) => {
    enter = resolve;
  });
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  c.on("room.event", async () => {
    enter();
    await gate;
  });
  return { entered, release };
}

describe("closing while a sync response is handled", () => {
  for (const how of ["the loop", "syncOnce"] as const) {
    it(`${how}: the response's handling and save finish before the store closes`, async () => {
      const { client: c, log } = await client();
      const { entered, release } = holdHandling(c);
      const syncing = how === "the loop" ? c.startSync() : c.syncOnce({ timeoutMs: 0 });
      await entered;
      const closing = c.close();
      // Let the close go as far as it goes without the handling (it has no I/O to wait for here).
      await new Promise<void>((resolve) => setImmediate(resolve));
      release();
      await closing;
      await syncing;
      assert.deepEqual(log, ["saved s1", "closed"]);
    });
  }

  it("syncOnce still waiting for its response: aborted, and the close does not wait for the server", async () => {
    const { client: c, log, firstAsked, answer } = await client(true);
    const once = c.syncOnce({ timeoutMs: 0 });
    const signal = await firstAsked;
    const closing = c.close();
    const aborted = signal.aborted;
    // Answered all the same, so that a close waiting for it ends (and the test fails, not hangs).
    answer();
    await closing;
    assert.ok(aborted, "the request was not aborted by close()");
    await assert.rejects(once, (e: unknown) => e instanceof NetworkError && e.code === "ABORTED");
    assert.deepEqual(log, ["closed"]);
  });
});
