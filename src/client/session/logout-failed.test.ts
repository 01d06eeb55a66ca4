// A logout the server does not carry out (a 5xx, the network): the token is still valid, yet the
// logout had stopped the sync loop and left it so, with the raw server error. It now rejects with
// ClientError("LOGOUT_FAILED") (the server's error as its cause) and the session goes on: the loop
// runs again and the session stays stored; a later logout ends it. (The dehydration schedule it
// paused resumes too: test/e2e/e2ee-client-dehydration.test.ts.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClientError, MatrixError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { bobSays, deferred, firstSyncThenHold, json, oneRoomSync } from "../test-support/held-sync.ts";
import { INSTANT_CLOCK, restoredMemoryClient } from "../test-support/scripted-sync.ts";
import type { FetchLike } from "../transport.ts";

/** A client whose loop runs (its first /sync answered, each later one held), and /logout failing once. */
async function syncingClient(logger?: Logger) {
  // Each held long-poll, as it comes: the first after the loop started, the next after a restart.
  const polls = [deferred(), deferred()];
  let held = 0;
  const sync = firstSyncThenHold(oneRoomSync(bobSays("!logout")), {
    onLater: () => polls[held++]?.resolve(),
  });
  let logoutFails = true;
  let logouts = 0;
  const fetch: FetchLike = async (url, init) => {
    if (new URL(url).pathname.endsWith("/logout")) {
      logouts += 1;
      if (logoutFails) {
        logoutFails = false;
        return json({ errcode: "M_UNKNOWN", error: "bad gateway" }, 502);
      }
      return json({});
    }
    return sync(url, init);
  };
  const client = await restoredMemoryClient({
    fetch,
    clock: INSTANT_CLOCK,
    ...(logger === undefined ? {} : { logger }),
  });
  return { client, polls, logouts: () => logouts };
}

describe("logout() the server fails", () => {
  it("rejects with LOGOUT_FAILED, the server's error its cause; the loop runs again and the session stays", async () => {
    const { client, polls, logouts } = await syncingClient();
    await client.startSync();
    await polls[0]?.promise; // the loop long-polls

    await assert.rejects(client.logout(), (e: unknown) => {
      assert.ok(e instanceof ClientError, "a typed error");
      assert.equal(e.code, "LOGOUT_FAILED");
      assert.ok(e.cause instanceof MatrixError && e.cause.httpStatus === 502);
      return true;
    });
    assert.equal(logouts(), 1);
    await polls[1]?.promise; // the loop long-polls again
    assert.notEqual(client.syncState, "stopped");
    assert.equal(client.isLoggedIn, true, "the session goes on");

    await client.logout(); // the server answers now
    assert.equal(client.syncState, "stopped");
    assert.equal(client.isLoggedIn, false);
  });

  it("asked for from a sync listener (a bot's !logout): the failure is logged, and the loop runs again", async () => {
    const warned = deferred<string>();
    const quiet = () => {};
    const { client, polls, logouts } = await syncingClient({
      debug: quiet,
      info: quiet,
      error: quiet,
      warn: (_obj, msg) => {
        if (msg === "logging out failed") warned.resolve(msg);
      },
    });
    client.on("room.event", async () => {
      await client.logout(); // returns at once: the logout goes on once this listener returned
    });
    await client.startSync();
    await warned.promise;
    assert.equal(logouts(), 1);
    await polls[0]?.promise; // the loop, stopped for the logout after that response, long-polls
    assert.equal(client.isLoggedIn, true);
    assert.notEqual(client.syncState, "stopped");
    await client.close();
  });

  it("a client that did not sync is not set syncing by the failed logout", async () => {
    const { client, polls } = await syncingClient();
    await assert.rejects(
      client.logout(),
      (e: unknown) => e instanceof ClientError && e.code === "LOGOUT_FAILED",
    );
    assert.equal(client.syncState, "stopped");
    await client.syncOnce({ timeoutMs: 0 }); // the session is usable
    assert.equal(client.nextBatch, "s1");
    polls[0]?.resolve();
  });
});
