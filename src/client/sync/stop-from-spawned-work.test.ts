// `close()` / `stopSync()` from the sync loop's own work return at once (waiting there would wait
// for itself), and own work is told by an async context, which code a listener starts and leaves
// running (a timer, a task it does not await) inherits. Called from such code once the loop waits
// only on the server again, they are not waited for by the loop, so they wait for the stop as a
// call from elsewhere does: `await client.close()` there returned before the store was closed (an
// `await close(); process.exit()` then lost it). The `timeout` only ends a deadlocked test.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MatrixClient } from "../client.ts";
import {
  bobSays,
  DEADLOCK,
  deferred,
  firstSyncThenHold,
  loggedStore,
  oneRoomSync,
} from "../test-support/held-sync.ts";
import { INSTANT_CLOCK, restoredMemoryClient } from "../test-support/scripted-sync.ts";

/** A client whose first /sync gets a one-room response; later ones wait until aborted (`polling` then resolves). */
async function client() {
  const log: string[] = [];
  const polled = deferred();
  const fetch = firstSyncThenHold(oneRoomSync(bobSays("!quit later")), { onLater: () => polled.resolve() });
  const store = loggedStore(log, ["close"]);
  const c = await restoredMemoryClient({ store, fetch, clock: INSTANT_CLOCK });
  return { client: c, log, polling: polled.promise };
}

/**
 * A `room.event` listener that starts `work` and leaves it running, held until `go` is called;
 * `result` resolves with what `work` returned.
 */
function leftRunning<T>(c: MatrixClient, work: () => Promise<T>): { go: () => void; result: Promise<T> } {
  const later = deferred();
  const result = deferred<T>();
  c.on("room.event", () => {
    // Not awaited by the listener: runs on in the listener's async context.
    void (async () => {
      await later.promise;
      result.resolve(await work());
    })();
  });
  return { go: () => later.resolve(), result: result.promise };
}

describe("close() or stopSync() from work a listener started and left running", () => {
  it(
    "close(), once the loop waits on the server again, returns with the store closed",
    DEADLOCK,
    async () => {
      const { client: c, log, polling } = await client();
      const { go, result } = leftRunning(c, async () => {
        await c.close();
        log.push("close returned");
      });
      await c.startSync();
      await polling; // the response is handled and saved; the loop long-polls
      go();
      await result;
      assert.deepEqual(log, ["closed", "close returned"]);
    },
  );

  it(
    "stopSync(), once the loop waits on the server again, returns with the loop stopped",
    DEADLOCK,
    async () => {
      const { client: c, polling } = await client();
      const { go, result: state } = leftRunning(c, async () => {
        await c.stopSync();
        return c.syncState;
      });
      await c.startSync();
      await polling;
      go();
      assert.equal(await state, "stopped");
      await c.close();
    },
  );
});
