// A /sync answered M_UNKNOWN_TOKEN (the device logged out elsewhere) while the position of the
// response before it is still being saved: that save lands before the session is cleared, never
// after it (a position saved into the cleared store would outlive the session it belongs to).
import assert from "node:assert/strict";
import { it } from "node:test";
import { MemoryClientStore } from "../client-store/index.ts";
import { deferred, json, logWrites, nextTurn } from "../test-support/held-sync.ts";
import { INSTANT_CLOCK, restoredMemoryClient } from "../test-support/scripted-sync.ts";

it("a revoked token clears the session only after the last response's position is saved", async () => {
  const log: string[] = [];
  const held = deferred();
  const store = new MemoryClientStore();
  const saveSync = store.saveSync.bind(store);
  store.saveSync = async (changes) => {
    // The second position's save waits until the revoked answer was reported.
    if (changes.nextBatch === "s2") {
      await held.promise;
      // One turn of the event loop more: a clear that does not wait for this save runs first.
      await nextTurn();
    }
    await saveSync(changes);
  };
  logWrites(store, log, ["saveSync", "clearIf"]);
  let requests = 0;
  const fetch = async (): Promise<Response> => {
    requests += 1;
    if (requests <= 2) return json({ next_batch: `s${requests}` });
    return json({ errcode: "M_UNKNOWN_TOKEN", error: "gone", soft_logout: false }, 401);
  };
  const client = await restoredMemoryClient({ store, fetch, clock: INSTANT_CLOCK });
  client.on("error", () => held.resolve());
  const loggedOut = new Promise<void>((resolve) => client.on("session.loggedOut", () => resolve()));
  await client.startSync();
  await loggedOut;
  await client.close();
  assert.deepEqual(log, ["saved s1", "saved s2", "cleared"]);
});
