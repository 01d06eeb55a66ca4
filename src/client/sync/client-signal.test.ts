// The client's `signal` aborted while its sync loop runs: every request is refused from then on,
// so the loop stops (state `stopped`) instead of backing off and retrying for ever, and a
// `startSync()` still waiting for its first response fails with the abort.
import assert from "node:assert/strict";
import { it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";
import { NetworkError } from "../errors.ts";

it("aborting the client's signal stops its sync loop, and the first sync fails with ABORTED", async () => {
  const store = new MemoryClientStore();
  await store.saveSession({
    homeserverUrl: "https://hs",
    userId: "@me:hs",
    deviceId: "DEV",
    accessToken: "t",
  });
  let asked: () => void = () => {};
  const firstAsked = new Promise<void>((resolve) => {
    asked = resolve;
  });
  // Each /sync waits until aborted, like a server that never answers.
  const fetch = (_url: string, init: RequestInit): Promise<Response> => {
    asked();
    return new Promise((_resolve, reject) => {
      (init.signal as AbortSignal).addEventListener("abort", () => reject(new Error("aborted")), {
        once: true,
      });
    });
  };
  // A backoff sleep never ends by itself: a loop that backs off shows as the `backoff` state.
  const clock: Clock = {
    now: () => 0,
    random: () => 0.5,
    sleep: (_ms, signal) =>
      new Promise((_resolve, reject) => {
        signal?.addEventListener("abort", () => reject(new NetworkError("ABORTED", "aborted")), {
          once: true,
        });
      }),
  };
  const controller = new AbortController();
  const client = new MatrixClient({
    homeserverUrl: "https://hs",
    store,
    fetch,
    clock,
    signal: controller.signal,
  });
  await client.restore();
  const next = new Promise<string>((resolve) =>
    client.on("sync", (state) => {
      if (state === "stopped" || state === "backoff") resolve(state);
    }),
  );
  const started = client.startSync();
  await firstAsked;
  controller.abort();
  assert.equal(await next, "stopped");
  await assert.rejects(started, (e: unknown) => e instanceof NetworkError && e.code === "ABORTED");
  await client.close();
});
