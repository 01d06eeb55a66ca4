// Refresh tokens: a login's, registration's or renewal's answer whose `expires_in_ms` or
// `refresh_token` is off. By then the server made the device (or spent the old refresh token), so
// failing the call would leave a device nobody holds (or a session whose refresh token is spent):
// the call succeeds without the bad field, warned of (`error` event, MalformedResponseError), and
// the session renews when the server says its token expired.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import { MalformedResponseError } from "../errors.ts";
import { silentLogger } from "../logger.ts";
import { RefreshServer } from "../test-support/refresh-server.ts";

/** `expires_in_ms` values no lifetime can be read from (JSON text). */
const BAD_EXPIRIES = ["-1", "0", "1.5", "1e400", "9007199254740993", '"60000"', "{}", "true"];
/** `refresh_token` values no renewal can be sent with (JSON text). */
const BAD_REFRESH_TOKENS = ["42", "[]", '"\\ud800"'];

function clientOf(srv: RefreshServer) {
  const store = new MemoryClientStore();
  const clock = { now: () => srv.now, random: () => 0.5, sleep: async () => undefined };
  const client = new MatrixClient({
    homeserverUrl: "https://hs",
    store,
    fetch: srv.fetch,
    clock,
    logger: silentLogger,
  });
  const warnings: MalformedResponseError[] = [];
  client.on("error", (e) => {
    assert.ok(e instanceof MalformedResponseError, String(e));
    warnings.push(e);
  });
  return { client, store, warnings };
}

const replaceField = (field: string, raw: string) => (json: string) =>
  json.replace(new RegExp(`"${field}":("[^"]*"|\\d+)`), `"${field}":${raw}`);

describe("refresh tokens: answers with a bad expiry or refresh token", () => {
  it("a login or registration with a bad expires_in_ms succeeds, its expiry unknown, and renews on a soft logout", async () => {
    for (const raw of BAD_EXPIRIES) {
      for (const how of ["login", "register"] as const) {
        const srv = new RefreshServer();
        srv.mangle = (json, path) => (path === "/refresh" ? json : replaceField("expires_in_ms", raw)(json));
        const { client, store, warnings } = clientOf(srv);
        if (how === "login") await client.login({ user: "alice", password: "pw" });
        else await client.register({ username: "alice", password: "pw" });
        const saved = await store.loadSession();
        assert.equal(saved?.refreshToken, srv.issued[1], `${how} ${raw}: the refresh token is kept`);
        assert.equal(saved?.accessTokenExpiresAt, undefined, `${how} ${raw}`);
        assert.equal(warnings.length, 1, `${how} ${raw}`);
        assert.match(warnings[0]?.issues.join() ?? "", /expires_in_ms/);
        assert.equal(warnings[0]?.endpoint, `POST /_matrix/client/v3/${how}`);
        for (const token of srv.issued) assert.ok(!warnings[0]?.message.includes(token));
        // No renewal ahead of an expiry unknown: the server's 401 soft logout brings it, once.
        await client.whoami();
        assert.equal(srv.refreshes, 0);
        srv.now += srv.lifetimeMs;
        await client.whoami();
        assert.equal(srv.refreshes, 1, `${how} ${raw}`);
        assert.equal(client.isLoggedIn, true);
        // The renewal's answer was fine: its expiry is known again.
        assert.equal((await store.loadSession())?.accessTokenExpiresAt, srv.now + srv.lifetimeMs);
        await client.close();
      }
    }
  });

  it("a login with a refresh token of the wrong shape succeeds as one without a refresh token", async () => {
    for (const raw of BAD_REFRESH_TOKENS) {
      const srv = new RefreshServer();
      srv.mangle = replaceField("refresh_token", raw);
      const { client, store, warnings } = clientOf(srv);
      await client.login({ user: "alice", password: "pw" });
      const saved = await store.loadSession();
      assert.equal(saved?.accessToken, srv.issued[0], raw);
      assert.equal(saved?.refreshToken, undefined, raw);
      assert.equal(saved?.accessTokenExpiresAt, undefined, raw);
      assert.equal(warnings.length, 1, raw);
      assert.match(warnings[0]?.issues.join() ?? "", /refresh_token/);
      await client.whoami();
      await client.close();
    }
  });

  it("null for either field is taken as absent, without a warning", async () => {
    const srv = new RefreshServer();
    srv.mangle = (json, path) => (path === "/refresh" ? json : replaceField("expires_in_ms", "null")(json));
    const { client, store, warnings } = clientOf(srv);
    await client.login({ user: "alice", password: "pw" });
    assert.equal((await store.loadSession())?.accessTokenExpiresAt, undefined);
    srv.mangle = replaceField("refresh_token", "null");
    srv.now += srv.lifetimeMs;
    await client.whoami();
    // No new refresh token in the renewal's answer: the old one is kept (spec).
    assert.equal((await store.loadSession())?.refreshToken, srv.issued[1]);
    assert.deepEqual(warnings, []);
    await client.close();
  });

  it("a renewal whose answer has a bad expires_in_ms takes the new tokens, its expiry unknown", async () => {
    for (const raw of BAD_EXPIRIES) {
      const srv = new RefreshServer();
      const { client, store, warnings } = clientOf(srv);
      await client.login({ user: "alice", password: "pw" });
      srv.mangle = (json, path) => (path === "/refresh" ? replaceField("expires_in_ms", raw)(json) : json);
      srv.now += srv.lifetimeMs;
      await client.whoami();
      assert.equal(srv.refreshes, 1);
      const saved = await store.loadSession();
      assert.equal(saved?.refreshToken, srv.issued.at(-1), `${raw}: the new refresh token is kept`);
      assert.equal(saved?.accessTokenExpiresAt, undefined, raw);
      assert.equal(warnings.length, 1, raw);
      assert.equal(warnings[0]?.endpoint, "POST /_matrix/client/v3/refresh");
      // The next renewal comes with the server's soft logout, with the new refresh token.
      srv.now += srv.lifetimeMs;
      await client.whoami();
      assert.equal(srv.refreshes, 2, raw);
      assert.equal(srv.refreshedWith[1], saved?.refreshToken);
      await client.close();
    }
  });
});
