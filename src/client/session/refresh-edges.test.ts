// Refresh tokens, edge cases found in review: what counts as a refused refresh token, and a
// process whose renewed tokens could not be saved.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore, type StoredSession } from "../client-store/index.ts";
import { MatrixError } from "../errors.ts";
import { silentLogger } from "../logger.ts";
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

/** A memory store whose next save of renewed tokens (not a claim) fails, as a full disk would. */
class FailingSaveStore extends MemoryClientStore {
  failNextSave = false;
  override async saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    if (this.failNextSave && session.refreshClaim === undefined) {
      this.failNextSave = false;
      throw new Error("disk full");
    }
    return super.saveSessionIf(session, expected);
  }
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
});
