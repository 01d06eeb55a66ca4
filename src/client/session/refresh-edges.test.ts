// Refresh tokens, edge cases found in review: what counts as a refused refresh token, and a
// process whose renewed tokens could not be saved.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
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

describe("refresh tokens: edge cases", () => {
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
