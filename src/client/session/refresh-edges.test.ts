// Refresh tokens, edge cases found in review: what counts as a refused refresh token, and a
// process whose renewed tokens could not be saved (alone, and beside another process sharing the
// store, which must not take the refusal of the token it spent for a logout).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore, type StoredSession } from "../client-store/index.ts";
import { MatrixError } from "../errors.ts";
import { silentLogger } from "../logger.ts";
import { manualClock } from "../test-support/manual-clock.ts";
import { RefreshServer } from "../test-support/refresh-server.ts";

function clientOf(srv: RefreshServer, store: ClientStore = new MemoryClientStore(), now = () => srv.now) {
  const clock = { now, random: () => 0.5, sleep: async () => undefined };
  const client = new MatrixClient({
    homeserverUrl: "https://hs",
    store,
    fetch: srv.fetch,
    clock,
    logger: silentLogger,
  });
  return { client, store };
}

/**
 * A memory store whose next save of renewed tokens (not a claim) fails, as a full disk would; or
 * every such save while `failing`.
 */
class FailingSaveStore extends MemoryClientStore {
  failNextSave = false;
  failing = false;
  override async saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    if ((this.failNextSave || this.failing) && session.refreshClaim === undefined) {
      this.failNextSave = false;
      throw new Error("disk full");
    }
    return super.saveSessionIf(session, expected);
  }
}

/** Yields to the event loop until `done()` (progress, not time). */
async function until(done: () => Promise<boolean>): Promise<void> {
  while (!(await done())) await new Promise((r) => setImmediate(r));
}

/** Alice logged in on a store whose next save can be made to fail, her clock asleep until woken. */
async function loggedInOnFailingStore() {
  const srv = new RefreshServer();
  const store = new FailingSaveStore();
  const aClock = manualClock(() => srv.now);
  const a = new MatrixClient({
    homeserverUrl: "https://hs",
    store,
    fetch: srv.fetch,
    clock: aClock,
    logger: silentLogger,
  });
  await a.login({ user: "alice", password: "pw" });
  return { srv, store, aClock, a };
}

describe("refresh tokens: edge cases", () => {
  it("a process whose renewed tokens were not saved does not go back to the older stored ones", async () => {
    const srv = new RefreshServer();
    const store = new FailingSaveStore();
    const { client } = clientOf(srv, store);
    await client.login({ user: "alice", password: "pw" });
    // Renewed, but the save fails: the store keeps the first tokens, whose refresh token the use
    // of the new access token revokes.
    srv.now += srv.lifetimeMs;
    store.failNextSave = true;
    await client.whoami();
    assert.equal(srv.refreshes, 1);
    // The next renewal uses the refresh token this process holds, and saves what it gets.
    srv.now += srv.lifetimeMs;
    await client.whoami();
    assert.equal(client.isLoggedIn, true);
    assert.equal(srv.refreshes, 2);
    assert.notEqual(srv.refreshedWith[1], srv.refreshedWith[0]);
    const stored = await store.loadSession();
    assert.equal(stored?.refreshToken, srv.issued.at(-1), "the newest tokens are saved");
    await client.close();
  });

  it("a /refresh answer that does not refuse the token (404, 405, 400 M_UNRECOGNIZED) keeps the session", async () => {
    for (const fault of [
      { status: 404, errcode: "M_UNRECOGNIZED" },
      { status: 405, errcode: "M_UNRECOGNIZED" },
      { status: 400, errcode: "M_UNRECOGNIZED" },
    ]) {
      const srv = new RefreshServer();
      const frozen = srv.now;
      const { client, store } = clientOf(srv, new MemoryClientStore(), () => frozen);
      await client.login({ user: "alice", password: "pw" });
      const { refreshToken } = (await store.loadSession()) ?? {};
      srv.now += srv.lifetimeMs;
      srv.faults.push({ kind: "refuse", ...fault });
      await assert.rejects(
        client.setDisplayName("A"),
        (e: unknown) => e instanceof MatrixError && e.httpStatus === fault.status,
      );
      assert.equal(client.isLoggedIn, true);
      assert.equal((await store.loadSession())?.refreshToken, refreshToken, "the session stays stored");
      // Once the server answers again, the same refresh token renews.
      await client.setDisplayName("A");
      assert.deepEqual(srv.refreshedWith, [refreshToken, refreshToken]);
      await client.close();
    }
  });

  it("a failed save of renewed tokens is tried again: another process takes them, no second refresh", async () => {
    const { srv, store, aClock, a } = await loggedInOnFailingStore();
    const b = clientOf(srv, store).client;
    await b.restore();
    srv.now += srv.lifetimeMs;
    store.failNextSave = true;
    await a.whoami(); // refreshed; the save failed and a's claim stayed
    assert.equal(aClock.sleeping(), 1, "a's save waits to be tried again");
    aClock.wake();
    await until(async () => (await store.loadSession())?.refreshToken === srv.issued.at(-1));
    await b.whoami();
    assert.equal(b.isLoggedIn, true);
    assert.equal(srv.refreshes, 1, "b took a's tokens from the store, once saved");
    await a.close();
    await b.close();
  });

  it("another process refused the token a process spent whose save is late: it waits for the tokens, not a logout", async () => {
    const { srv, store, aClock, a } = await loggedInOnFailingStore();
    // b's sleeps end at once (its wait for a's claim runs out); after its refused refresh, the
    // store heals and a's next try at the save goes through.
    const bClock = {
      now: () => srv.now,
      random: () => 0.5,
      sleep: async () => {
        if (srv.refreshedWith.length < 2 || !store.failing) return;
        store.failing = false;
        aClock.wake();
        await until(async () => (await store.loadSession())?.refreshToken === srv.issued.at(-1));
      },
    };
    const b = new MatrixClient({
      homeserverUrl: "https://hs",
      store,
      fetch: srv.fetch,
      clock: bClock,
      logger: silentLogger,
    });
    await b.restore();
    srv.now += srv.lifetimeMs;
    store.failing = true;
    await a.whoami(); // refreshed; the save failed, a's claim stays, a tries again later
    assert.equal(aClock.sleeping(), 1, "a's save waits to be tried again");
    await b.whoami();
    const [spent, again] = srv.refreshedWith;
    assert.equal(again, spent, "b tried the refresh token a had spent, and was refused");
    assert.equal(srv.refreshedWith.length, 2);
    assert.equal(b.isLoggedIn, true, "not logged out");
    assert.equal((await store.loadSession())?.refreshToken, srv.issued.at(-1), "the store keeps a's tokens");
    await a.whoami();
    assert.equal(a.isLoggedIn, true);
    await a.close();
    await b.close();
  });
});
