import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { type ClientStore, MemoryClientStore } from "../client-store/index.ts";
import type { Clock } from "../clock.ts";
import { MatrixError, NetworkError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { manualClock } from "../test-support/manual-clock.ts";
import { RefreshServer } from "../test-support/refresh-server.ts";
import { REFRESH_CLAIM_MS, TOKEN_REFRESH_MARGIN_MS } from "./refresh.ts";

function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (obj?: unknown, msg?: string) => void lines.push(JSON.stringify(obj) + (msg ?? ""));
  return { lines, debug: log, info: log, warn: log, error: log };
}

/** A clock reading `now` whose sleeps (retry backoffs) end at once. */
function clockOf(now: () => number): Clock {
  return { now, random: () => 0.5, sleep: async () => undefined };
}

/**
 * A client of `srv` on `store`, whose clock reads `now` (the server's unless given: a client
 * whose clock lags the server's sees its token expire only when the server says so).
 */
function clientOf(
  srv: RefreshServer,
  store: ClientStore = new MemoryClientStore(),
  now: () => number = () => srv.now,
  logger: Logger = capturingLogger(),
) {
  const clock = clockOf(now);
  const client = new MatrixClient({ homeserverUrl: "https://hs", store, fetch: srv.fetch, clock, logger });
  return { client, store };
}

const isUnknownToken = (e: unknown) => e instanceof MatrixError && e.errcode === "M_UNKNOWN_TOKEN";

describe("refresh tokens", () => {
  it("login and registration ask for a refresh token by default, and the store keeps it with the expiry", async () => {
    const srv = new RefreshServer();
    const { client, store } = clientOf(srv);
    await client.login({ user: "alice", password: "pw" });
    assert.equal(srv.logins[0]?.refresh_token, true);
    const stored = await store.loadSession();
    assert.equal(stored?.refreshToken, srv.issued[1]);
    assert.equal(stored?.accessTokenExpiresAt, srv.now + srv.lifetimeMs);
    await client.register({ username: "alice", password: "pw" });
    assert.equal(srv.logins[1]?.refresh_token, true);
    const off = new MatrixClient({ homeserverUrl: "https://hs", fetch: srv.fetch, refreshTokens: false });
    await off.login({ user: "alice", password: "pw" });
    await off.register({ username: "alice", password: "pw" });
    assert.equal(srv.logins[2]?.refresh_token, undefined);
    assert.equal(srv.logins[3]?.refresh_token, undefined);
    assert.equal((await off.store.loadSession())?.refreshToken, undefined);
  });

  it("renews the token shortly before it expires, before the request that finds it due", async () => {
    const srv = new RefreshServer();
    const { client, store } = clientOf(srv);
    await client.login({ user: "alice", password: "pw" });
    const first = await store.loadSession();
    srv.now += srv.lifetimeMs / 2 - 1;
    await client.whoami();
    assert.equal(srv.refreshes, 0, "not due yet");
    srv.now += 1;
    await client.whoami();
    assert.deepEqual(srv.refreshedWith, [first?.refreshToken]);
    assert.ok(!srv.requests.slice(-1)[0]?.includes("refresh"));
    const renewed = await store.loadSession();
    assert.notEqual(renewed?.accessToken, first?.accessToken);
    assert.notEqual(renewed?.refreshToken, first?.refreshToken);
    assert.equal(renewed?.accessTokenExpiresAt, srv.now + srv.lifetimeMs);
    assert.equal(renewed?.refreshClaim, undefined, "the claim is gone with the refresh");
    // Never later than TOKEN_REFRESH_MARGIN_MS before expiry, whatever the lifetime.
    srv.lifetimeMs = 10 * TOKEN_REFRESH_MARGIN_MS;
    srv.now += 10 * TOKEN_REFRESH_MARGIN_MS;
    await client.whoami();
    assert.equal(srv.refreshes, 2);
    srv.now += 9 * TOKEN_REFRESH_MARGIN_MS - 1;
    await client.whoami();
    assert.equal(srv.refreshes, 2);
    srv.now += 1;
    await client.whoami();
    assert.equal(srv.refreshes, 3);
  });

  it("renews when the server says the token expired, and sends the request again", async () => {
    const srv = new RefreshServer();
    const frozen = srv.now;
    const { client } = clientOf(srv, new MemoryClientStore(), () => frozen);
    await client.login({ user: "alice", password: "pw" });
    srv.now += srv.lifetimeMs;
    assert.equal((await client.whoami()).user_id, "@alice:hs");
    assert.deepEqual(srv.requests.slice(-3), [
      "GET /_matrix/client/v3/account/whoami",
      "POST /_matrix/client/v3/refresh",
      "GET /_matrix/client/v3/account/whoami",
    ]);
  });

  it("one refresh serves every request the server refused at once: the sync, sends, account data", async () => {
    const srv = new RefreshServer();
    const frozen = srv.now;
    const { client } = clientOf(srv, new MemoryClientStore(), () => frozen);
    await client.login({ user: "alice", password: "pw" });
    srv.now += srv.lifetimeMs;
    const held = srv.hold();
    const calls = [
      client.syncOnce({ timeoutMs: 0 }),
      client.whoami(),
      client.setAccountData("m.test", { a: 1 }),
      client.setDisplayName("Alice"),
      client.whoami(),
    ];
    await held.arrived;
    // Let the others meet their 401 while the refresh is held.
    while (srv.requests.filter((r) => !r.includes("refresh") && !r.includes("login")).length < calls.length) {
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    held.release();
    await Promise.all(calls);
    assert.equal(srv.refreshes, 1);
    assert.equal(client.nextBatch !== undefined, true);
  });

  it("a request that finds a renewal under way waits for it instead of going out on the old token", async () => {
    const srv = new RefreshServer();
    const { client } = clientOf(srv);
    await client.login({ user: "alice", password: "pw" });
    srv.now += srv.lifetimeMs; // due (and expired) by both clocks
    const held = srv.hold();
    const first = client.whoami();
    await held.arrived;
    const second = client.whoami();
    held.release();
    await Promise.all([first, second]);
    assert.equal(srv.refreshes, 1);
    assert.equal(srv.requests.filter((r) => r.endsWith("whoami")).length, 2, "no request met a 401");
  });

  it("a refused refresh logs the session out through the sync loop, and is not tried again", async () => {
    for (const refusal of [
      { status: 401, errcode: "M_UNKNOWN_TOKEN" },
      { status: 403, errcode: "M_FORBIDDEN" }, // Synapse's answer to a spent refresh token
    ]) {
      const srv = new RefreshServer();
      const frozen = srv.now;
      const { client, store } = clientOf(srv, new MemoryClientStore(), () => frozen);
      await client.login({ user: "alice", password: "pw" });
      srv.now += srv.lifetimeMs;
      srv.faults.push({ kind: "refuse", ...refusal });
      await assert.rejects(client.whoami(), isUnknownToken);
      await assert.rejects(client.whoami(), isUnknownToken);
      assert.equal(srv.refreshes, 1, "a refused refresh token is not sent again");
      const loggedOut: boolean[] = [];
      client.on("session.loggedOut", ({ softLogout }) => void loggedOut.push(softLogout));
      await assert.rejects(client.startSync(), isUnknownToken);
      assert.deepEqual(loggedOut, [false]);
      assert.equal(client.isLoggedIn, false);
      assert.equal(await store.loadSession(), undefined, "the stored session is forgotten");
    }
  });

  it("a refresh that failed for the network or a 5xx keeps the session, and the next request renews", async () => {
    const srv = new RefreshServer();
    const frozen = srv.now;
    const { client, store } = clientOf(srv, new MemoryClientStore(), () => frozen);
    await client.login({ user: "alice", password: "pw" });
    const { refreshToken } = (await store.loadSession()) ?? {};
    srv.now += srv.lifetimeMs;
    // (A send, which is not retried: a whoami would be, and meet its own refresh.)
    srv.faults.push({ kind: "error", status: 502 });
    await assert.rejects(
      client.setDisplayName("A"),
      (e: unknown) => e instanceof MatrixError && e.httpStatus === 502,
    );
    // The server refreshed but its answer was lost: the old refresh token is still good (spec).
    srv.faults.push({ kind: "lost" });
    await assert.rejects(client.setDisplayName("A"), NetworkError);
    assert.equal(client.isLoggedIn, true);
    await client.setDisplayName("A");
    assert.deepEqual(srv.refreshedWith, [refreshToken, refreshToken, refreshToken]);
  });

  it("ahead of expiry, a failed renewal lets the request go on the old token and waits before trying again", async () => {
    const srv = new RefreshServer();
    const { client } = clientOf(srv);
    await client.login({ user: "alice", password: "pw" });
    srv.now += srv.lifetimeMs / 2; // due, not expired
    srv.faults.push({ kind: "error", status: 503 });
    await client.whoami();
    await client.whoami();
    assert.equal(srv.refreshes, 1, "paused after the failure");
    srv.now += 5_000;
    await client.whoami();
    assert.equal(srv.refreshes, 2);
  });

  it("a session the server revoked (soft_logout false) is not refreshed", async () => {
    const srv = new RefreshServer();
    const { client } = clientOf(srv);
    await client.login({ user: "alice", password: "pw" });
    srv.revokeAll();
    await assert.rejects(
      client.whoami(),
      (e: unknown) => isUnknownToken(e) && (e as MatrixError).body.soft_logout === false,
    );
    assert.equal(srv.refreshes, 0);
  });

  it("a restart reuses the stored refresh token", async () => {
    const srv = new RefreshServer();
    const store = new MemoryClientStore();
    const { client } = clientOf(srv, store);
    await client.login({ user: "alice", password: "pw" });
    await client.close();
    const { refreshToken } = (await store.loadSession()) ?? {};
    srv.now += 10 * srv.lifetimeMs;
    const again = await MatrixClient.fromStore(store, { fetch: srv.fetch, clock: clockOf(() => srv.now) });
    await again.whoami();
    assert.deepEqual(srv.refreshedWith, [refreshToken]);
    assert.notEqual((await store.loadSession())?.refreshToken, refreshToken);
  });

  it("processes sharing a store: the one that comes second takes the tokens the first saved", async () => {
    const srv = new RefreshServer();
    const store = new MemoryClientStore();
    const a = clientOf(srv, store).client;
    await a.login({ user: "alice", password: "pw" });
    const b = await MatrixClient.fromStore(store, { fetch: srv.fetch, clock: clockOf(() => srv.now) });
    srv.now += srv.lifetimeMs;
    await a.whoami();
    await b.whoami();
    await a.whoami();
    assert.equal(srv.refreshes, 1, "b took a's tokens from the store");
    assert.equal(srv.requests.filter((r) => r.endsWith("whoami")).length, 3, "and met no 401");
  });

  it("processes sharing a store: one refreshing at a time, the other waits for its tokens", async () => {
    const srv = new RefreshServer();
    const store = new MemoryClientStore();
    const a = clientOf(srv, store);
    await a.client.login({ user: "alice", password: "pw" });
    const bClock = manualClock(() => srv.now);
    const b = await MatrixClient.fromStore(store, { fetch: srv.fetch, clock: bClock });
    srv.now += srv.lifetimeMs;
    const held = srv.hold();
    const fromA = a.client.whoami();
    await held.arrived;
    assert.equal((await store.loadSession())?.refreshClaim?.until, srv.now + REFRESH_CLAIM_MS);
    const fromB = b.whoami();
    while (bClock.sleeping() === 0) await new Promise((r) => setImmediate(r));
    held.release();
    await fromA;
    bClock.wake();
    await fromB;
    assert.equal(srv.refreshes, 1, "b did not spend the refresh token a was using");
    assert.equal(srv.requests.filter((r) => r.endsWith("whoami")).length, 2);
  });

  it("a process whose refresh token another spent meanwhile takes the other's stored tokens", async () => {
    // b reads the store just before a saves its new tokens (a store without claims: no
    // saveSessionIf), so it refreshes with the token a spent: the server refuses it.
    const srv = new RefreshServer();
    const shared = new MemoryClientStore();
    const a = clientOf(srv, shared).client;
    await a.login({ user: "alice", password: "pw" });
    const before = await shared.loadSession();
    let stale = false;
    const seenByB: ClientStore = {
      loadSession: async () => {
        if (!stale) return shared.loadSession();
        stale = false;
        return before;
      },
      saveSession: (x) => shared.saveSession(x),
      loadSync: () => shared.loadSync(),
      saveSync: (c) => shared.saveSync(c),
      clear: () => shared.clear(),
    };
    const b = clientOf(srv, seenByB).client;
    await b.restore();
    srv.now += srv.lifetimeMs;
    await a.whoami(); // a refreshed and used its new token: the old refresh token is spent
    stale = true;
    await b.whoami();
    assert.equal(srv.refreshes, 2);
    assert.equal(b.isLoggedIn, true);
    assert.equal(srv.requests.slice(-1)[0], "GET /_matrix/client/v3/account/whoami");
    await a.whoami();
    assert.equal(srv.refreshes, 2, "a's tokens stayed good: b took them instead of spending more");
  });

  it("never logs a token", async () => {
    const srv = new RefreshServer();
    const logger = capturingLogger();
    const frozen = srv.now;
    const { client } = clientOf(srv, new MemoryClientStore(), () => frozen, logger);
    await client.login({ user: "alice", password: "pw" });
    srv.now += srv.lifetimeMs;
    await client.whoami();
    srv.now += srv.lifetimeMs;
    srv.faults.push({ kind: "refuse", status: 401, errcode: "M_UNKNOWN_TOKEN" });
    await assert.rejects(client.whoami(), isUnknownToken);
    assert.ok(logger.lines.length > 0);
    for (const token of srv.issued) {
      assert.ok(!logger.lines.some((l) => l.includes(token)), "a token reached the log");
    }
  });
});
