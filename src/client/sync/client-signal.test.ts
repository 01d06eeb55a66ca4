// The client's `signal` aborted while its sync loop runs: every request is refused from then on,
// so the loop stops (state `stopped`) instead of backing off and retrying for ever, and a
// `startSync()` still waiting for its first response fails with the abort.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { Clock } from "../clock.ts";
import { NetworkError } from "../errors.ts";
import { deferred, untilAborted } from "../test-support/held-sync.ts";
import { restoredMemoryClient } from "../test-support/scripted-sync.ts";

it("aborting the client's signal stops its sync loop, and the first sync fails with ABORTED", async () => {
  const asked = deferred();
  // Each /sync waits until aborted, like a server that never answers.
  const fetch = (_url: string, init: RequestInit): Promise<Response> => {
    asked.resolve();
    return untilAborted(init.signal as AbortSignal);
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
  const client = await restoredMemoryClient({ fetch, clock, signal: controller.signal });
  const next = new Promise<string>((resolve) =>
    client.on("sync", (state) => {
      if (state === "stopped" || state === "backoff") resolve(state);
    }),
  );
  const started = client.startSync();
  await asked.promise;
  controller.abort();
  assert.equal(await next, "stopped");
  await assert.rejects(started, (e: unknown) => e instanceof NetworkError && e.code === "ABORTED");
  await client.close();
});
