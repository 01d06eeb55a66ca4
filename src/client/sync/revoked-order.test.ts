// A /sync answered M_UNKNOWN_TOKEN (the device logged out elsewhere) while the position of the
// response before it is still being saved: that save lands before the session is cleared, never
// after it (a position saved into the cleared store would outlive the session it belongs to).
import assert from "node:assert/strict";
import { it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";

const clock: Clock = { now: () => 0, random: () => 0.5, sleep: async () => {} };

it("a revoked token clears the session only after the last response's position is saved", async () => {
  const log: string[] = [];
  const store = new MemoryClientStore();
  await store.saveSession({
    homeserverUrl: "https://hs",
    userId: "@me:hs",
    deviceId: "DEV",
    accessToken: "t",
  });
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const saveSync = store.saveSync.bind(store);
  store.saveSync = async (changes) => {
    // The second position's save waits until the revoked answer was reported.
    if (changes.nextBatch === "s2") {
      await held;
      // One turn of the event loop more: a clear that does not wait for this save runs first.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await saveSync(changes);
    log.push(`saved ${changes.nextBatch}`);
  };
  const clearIf = store.clearIf.bind(store);
  (store as ClientStore).clearIf = async (ours) => {
    const cleared = await clearIf(ours);
    log.push("cleared");
    return cleared;
  };
  let requests = 0;
  const fetch = async (): Promise<Response> => {
    requests += 1;
    if (requests <= 2) {
      return new Response(JSON.stringify({ next_batch: `s${requests}` }), {
        headers: { "content-type": "application/json" },
      });
    }
    return new Response(JSON.stringify({ errcode: "M_UNKNOWN_TOKEN", error: "gone", soft_logout: false }), {
      status: 401,
      headers: { "content-type": "application/json" },
    });
  };
  const client = new MatrixClient({ homeserverUrl: "https://hs", store, fetch, clock });
  await client.restore();
  client.on("error", () => release());
  const loggedOut = new Promise<void>((resolve) => client.on("session.loggedOut", () => resolve()));
  await client.startSync();
  await loggedOut;
  await client.close();
  assert.deepEqual(log, ["saved s1", "saved s2", "cleared"]);
});
