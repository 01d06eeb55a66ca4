// Closing a client while a sync response is being handled: the handling (listeners, the save of its
// position) finishes before the store closes, whether the response came to the loop or to a
// `syncOnce`, and a `syncOnce` still waiting for its response is aborted rather than waited for.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NetworkError } from "../errors.ts";
import {
  bobSays,
  deferred,
  firstSyncThenHold,
  holdingListener,
  loggedStore,
  nextTurn,
  oneRoomSync,
  untilAborted,
} from "../test-support/held-sync.ts";
import { INSTANT_CLOCK, restoredMemoryClient } from "../test-support/scripted-sync.ts";

/**
 * A client whose first /sync gets a one-room response (once `answer` is called, when `held`), and
 * any later one waits until aborted. `log` records each save of a sync position and the store's
 * close, in the order they complete.
 */
async function client(held = false) {
  const log: string[] = [];
  const asked = deferred<AbortSignal>();
  const answered = deferred();
  const first = async (signal: AbortSignal) => {
    asked.resolve(signal);
    await Promise.race([answered.promise, untilAborted(signal)]);
  };
  const fetch = firstSyncThenHold(oneRoomSync(bobSays("hi", 1)), held ? { first } : {});
  const store = loggedStore(log, ["saveSync", "close"]);
  const c = await restoredMemoryClient({ store, fetch, clock: INSTANT_CLOCK });
  return { client: c, log, firstAsked: asked.promise, answer: () => answered.resolve() };
}

describe("closing while a sync response is handled", () => {
  for (const how of ["the loop", "syncOnce"] as const) {
    it(`${how}: the response's handling and save finish before the store closes`, async () => {
      const { client: c, log } = await client();
      const { entered, release } = holdingListener(c);
      const syncing = how === "the loop" ? c.startSync() : c.syncOnce({ timeoutMs: 0 });
      await entered;
      const closing = c.close();
      // Let the close go as far as it goes without the handling (it has no I/O to wait for here).
      await nextTurn();
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
