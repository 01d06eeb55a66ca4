// Refresh tokens against the devserver, its token clock stepped by the test (no waiting for
// expiry): clients keep syncing and sending across several expiries, renewing ahead of expiry or
// when the server says the token expired; a restart reuses the stored refresh token; the CLI's
// profile (one token shared by its commands) asks for none.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loginToProfile, restoreProfile } from "../../src/cli/session.ts";
import { deferred } from "../../src/client/test-support/held-sync.ts";
import {
  type ClientStore,
  type Clock,
  type FetchLike,
  MatrixClient,
  MemoryClientStore,
  SqliteClientStore,
  systemClock,
} from "../../src/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

const LIFETIME_MS = 60_000;
/** The devserver's token clock, stepped by the tests. */
let now = 1_000_000;
let hs: TestDevServer;
let dir: string;
let n = 0;
const uniq = (p: string) => `${p}${++n}${Date.now().toString(36)}`;

before(async () => {
  hs = await startTestDevServer({ accessTokenLifetimeMs: LIFETIME_MS, now: () => now });
  dir = await mkdtemp(join(tmpdir(), "keyroom-refresh-e2e-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

/** The client's clock: `read` for the time (the server's by default), real sleeps. */
function clockReading(read: () => number = () => now): Clock {
  return { now: read, random: () => 0.5, sleep: (ms, signal) => systemClock.sleep(ms, signal) };
}

/** A registered client on `store` whose clock reads `read`; what happens to its session is recorded. */
async function registered(store: ClientStore, read?: () => number) {
  const client = new MatrixClient({ homeserverUrl: hs.baseUrl, store, clock: clockReading(read) });
  await client.register({ username: uniq("r"), password: "pw" });
  return { client, ...watched(client) };
}

function watched(client: MatrixClient) {
  const loggedOut: boolean[] = [];
  const syncErrors: unknown[] = [];
  client.on("session.loggedOut", ({ softLogout }) => void loggedOut.push(softLogout));
  client.on("sync", (state, _prev, info) => {
    if (state === "error" || state === "backoff") syncErrors.push(info.error);
  });
  return { loggedOut, syncErrors };
}

/**
 * Resolves when `client` sees a message `body` in `roomId`; rejects if its session ends or its
 * sync stops first (the test fails instead of waiting for ever).
 */
function seen(client: MatrixClient, roomId: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const on = (room: { roomId: string }, event: { content: Record<string, unknown> }) => {
      if (room.roomId !== roomId || event.content.body !== body) return;
      done();
      resolve();
    };
    const ended = () => {
      done();
      reject(new Error(`the session ended before "${body}" came`));
    };
    const stopped = (state: string) => {
      if (state === "error" || state === "stopped") ended();
    };
    const done = () => {
      client.off("room.event", on);
      client.off("session.loggedOut", ended);
      client.off("sync", stopped);
    };
    client.on("room.event", on);
    client.on("session.loggedOut", ended);
    client.on("sync", stopped);
  });
}

describe("refresh tokens against the devserver", () => {
  it("clients keep syncing and sending across several expiries, and a restart reuses the stored refresh token", async () => {
    const path = join(dir, "alice.sqlite3");
    // alice renews ahead of expiry (her clock is the server's); bob's clock stands still, so he
    // renews only when the server answers that his token expired.
    const alice = await registered(await SqliteClientStore.open(path));
    const frozen = now;
    const bob = await registered(await SqliteClientStore.open(join(dir, "bob.sqlite3")), () => frozen);
    const roomId = await alice.client.createRoom({ encrypted: false });
    await alice.client.invite(roomId, bob.client.userId);
    await bob.client.joinRoom(roomId);
    await alice.client.startSync();
    await bob.client.startSync();
    const stored = await alice.client.store.loadSession();
    assert.equal(stored?.accessTokenExpiresAt, now + LIFETIME_MS);
    const refreshTokens = new Set([stored?.refreshToken]);
    const bobTokens = new Set([(await bob.client.store.loadSession())?.accessToken]);
    for (let round = 0; round < 3; round++) {
      now += LIFETIME_MS;
      const toAlice = seen(alice.client, roomId, `from bob ${round}`);
      await bob.client.sendText(roomId, `from bob ${round}`);
      await toAlice;
      const toBob = seen(bob.client, roomId, `from alice ${round}`);
      await alice.client.sendText(roomId, `from alice ${round}`);
      await toBob;
      refreshTokens.add((await alice.client.store.loadSession())?.refreshToken);
      bobTokens.add((await bob.client.store.loadSession())?.accessToken);
    }
    assert.equal(refreshTokens.size, 4, "alice renewed once per lifetime, each saved");
    assert.equal(bobTokens.size, 4, "bob renewed once per expiry, each saved");
    for (const c of [alice, bob]) {
      assert.deepEqual(c.loggedOut, []);
      assert.deepEqual(c.syncErrors, []);
      assert.equal(c.client.isLoggedIn, true);
    }
    const { deviceId } = alice.client;
    await alice.client.close();
    await bob.client.close();

    // Restarted long after: the stored access token expired, the stored refresh token renews it.
    now += 10 * LIFETIME_MS;
    const before = await (await SqliteClientStore.open(path)).loadSession();
    assert.equal(
      (await hs.api("GET", "/account/whoami", { token: before?.accessToken })).json.soft_logout,
      true,
    );
    const restarted = await MatrixClient.fromStore(await SqliteClientStore.open(path), {
      clock: clockReading(),
    });
    const events = watched(restarted);
    await restarted.startSync();
    assert.equal(restarted.deviceId, deviceId);
    const after = await restarted.store.loadSession();
    assert.notEqual(after?.refreshToken, before?.refreshToken);
    assert.equal(after?.accessTokenExpiresAt, now + LIFETIME_MS);
    assert.equal((await hs.api("GET", "/account/whoami", { token: after?.accessToken })).status, 200);
    const refused = await hs.api("POST", "/refresh", { body: { refresh_token: before?.refreshToken } });
    assert.equal(refused.status, 401, "the stored refresh token was spent by the restart");
    assert.deepEqual(events.loggedOut, []);
    await restarted.close();
  });

  it("an app that keeps the session itself saves it from session.renewed and restores it after a restart", async () => {
    // The app's own copy of the session (say, in its settings), the client on a memory store.
    const { client } = await registered(new MemoryClientStore());
    let saved = await client.store.loadSession();
    const renewed: string[] = [];
    client.on("session.renewed", (session) => {
      renewed.push(session.accessToken);
      saved = session;
    });
    const roomId = await client.createRoom({ encrypted: false });
    now += LIFETIME_MS; // expired: the next request renews
    await client.sendText(roomId, "after expiry");
    assert.equal(renewed.length, 1);
    assert.equal(renewed[0], (await client.store.loadSession())?.accessToken);
    await client.close();

    now += LIFETIME_MS;
    const again = new MatrixClient({ homeserverUrl: hs.baseUrl, clock: clockReading() });
    const events = watched(again);
    assert.ok(saved !== undefined);
    await again.restore(saved);
    await again.sendText(roomId, "after the restart");
    assert.deepEqual(events.loggedOut, []);
    assert.equal(again.isLoggedIn, true);
    await again.close();
  });

  it("close() while a renewal is under way: its new tokens are saved before the store closes", async () => {
    const path = join(dir, "closing.sqlite3");
    // The first /refresh is held until the test lets it go.
    const reached = deferred();
    const gate = deferred();
    let held = false;
    const fetchImpl: FetchLike = async (url, init) => {
      if (!held && new URL(url).pathname.endsWith("/refresh")) {
        held = true;
        reached.resolve();
        await gate.promise;
      }
      return fetch(url, init);
    };
    const client = new MatrixClient({
      homeserverUrl: hs.baseUrl,
      store: await SqliteClientStore.open(path),
      clock: clockReading(),
      fetch: fetchImpl,
    });
    await client.register({ username: uniq("c"), password: "pw" });
    const before = await client.store.loadSession();
    now += LIFETIME_MS; // expired: the next request renews
    const asked = client.whoami().catch(() => undefined); // nothing close() waits for by itself
    await reached.promise;
    const closed = client.close();
    gate.resolve();
    await closed;
    await asked;

    const stored = await (await SqliteClientStore.open(path)).loadSession();
    assert.notEqual(stored?.refreshToken, before?.refreshToken, "the renewed tokens were saved");
    assert.equal((await hs.api("GET", "/account/whoami", { token: stored?.accessToken })).status, 200);
  });

  it("a refresh token the server no longer knows logs the session out", async () => {
    const alice = await registered(await SqliteClientStore.open(join(dir, "gone.sqlite3")));
    const { refreshToken } = (await alice.client.store.loadSession()) ?? {};
    // Spent elsewhere (a copy of the store): the server answers 401 M_UNKNOWN_TOKEN to this one.
    const other = await hs.api("POST", "/refresh", { body: { refresh_token: refreshToken } });
    await hs.api("GET", "/account/whoami", { token: other.json.access_token });
    now += LIFETIME_MS;
    await assert.rejects(alice.client.startSync());
    assert.deepEqual(alice.loggedOut, [false]);
    assert.equal(alice.client.isLoggedIn, false);
    assert.equal(await alice.client.store.loadSession(), undefined);
    await alice.client.close();
  });

  it("the CLI's profile asks for no refresh token: its token outlives the devserver's lifetime", async () => {
    const user = uniq("cli");
    await hs.register(user, "pw");
    const profileDir = join(dir, "profile");
    const profile = await loginToProfile({
      profileDir,
      homeserver: hs.baseUrl,
      user,
      password: "pw",
      encryption: false,
    });
    now += 10 * LIFETIME_MS;
    const client = await restoreProfile(profile, "plain");
    try {
      assert.equal((await client.whoami()).user_id, profile.userId);
      assert.equal((await client.store.loadSession())?.refreshToken, undefined);
    } finally {
      await client.close();
    }
  });
});
