// `whileSyncing` (the verify commands): sync failing for good (here the server ending the session)
// fails the command, but only once the command's work returned: it used to return at once, and the
// client then closed under a request still under way. Waits for what sync brings end with the
// failure. The `timeout`s only end a deadlocked test; no step is timed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { restoredMemoryClient } from "../../client/test-support/scripted-sync.ts";
import type { MatrixClient } from "../../index.ts";
import { CliError } from "../errors.ts";
import { unlessStopped, whileSyncing } from "./verify.ts";

const DEADLOCK = { timeout: 60_000 };

/** A client whose first /sync is refused: the session is over (the loop stops on it). */
function refusedClient(): Promise<MatrixClient> {
  const fetch = async (): Promise<Response> =>
    new Response(JSON.stringify({ errcode: "M_UNKNOWN_TOKEN", error: "gone" }), {
      status: 401,
      headers: { "content-type": "application/json" },
    });
  return restoredMemoryClient({ fetch });
}

/** Resolves once the client's sync state becomes "error" (registered after `whileSyncing`'s). */
function syncFailed(client: MatrixClient): Promise<void> {
  return new Promise((resolve) => {
    const off = client.on("sync", (state) => {
      if (state === "error") {
        off();
        resolve();
      }
    });
  });
}

test(
  "sync failing while the command's work is under way: the command fails once that work returned",
  DEADLOCK,
  async () => {
    const client = await refusedClient();
    const order: string[] = [];
    let finishWork: () => void = () => {};
    const work = new Promise<void>((resolve) => {
      finishWork = resolve;
    });
    let started: () => void = () => {};
    const workStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const running = whileSyncing(client, async () => {
      started();
      await work; // a request to the server under way (it ends by itself)
      order.push("work returned");
    }).then(
      () => order.push("command succeeded"),
      (e: unknown) => order.push(e instanceof CliError ? `command failed: ${e.code}` : "command failed"),
    );
    const failed = syncFailed(client);
    await workStarted;
    await failed;
    finishWork();
    await running;
    assert.deepEqual(order, ["work returned", "command failed: LOGGED_OUT"]);
    await client.close();
  },
);

test(
  "sync failing while the command waits for what sync brings: the wait ends, and the command fails",
  DEADLOCK,
  async () => {
    const client = await refusedClient();
    let after = false;
    const never = new Promise<void>(() => {});
    await assert.rejects(
      whileSyncing(client, async (stopped) => {
        await unlessStopped(never, stopped);
        after = true;
      }),
      (e: unknown) => e instanceof CliError && e.code === "LOGGED_OUT",
    );
    assert.equal(after, false);
    await client.close();
  },
);

test("the command's own failure is reported as it is", DEADLOCK, async () => {
  // The loop's request waits until the sync stops.
  const fetch = (_url: string, init: RequestInit): Promise<Response> =>
    new Promise((_, reject) => {
      (init.signal as AbortSignal).addEventListener("abort", () => reject(new Error("aborted")), {
        once: true,
      });
    });
  const client = await restoredMemoryClient({ fetch });
  await assert.rejects(
    whileSyncing(client, async () => {
      throw new CliError("USAGE", "no");
    }),
    (e: unknown) => e instanceof CliError && e.code === "USAGE",
  );
  await client.close();
});
