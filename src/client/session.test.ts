import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { MatrixClient } from "./client.ts";
import { MemoryClientStore } from "./client-store/index.ts";
import { ClientError, MalformedResponseError, MatrixError } from "./errors.ts";
import type { Logger } from "./logger.ts";

const TOKEN = "syt_very_secret_token";
const PASSWORD = "hunter2-password";

/** A fake homeserver for the session endpoints, recording request bodies. */
function fakeServer() {
  const logins: Record<string, unknown>[] = [];
  let registerCalls = 0;
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const u = new URL(url);
    const body = init.body ? (JSON.parse(String(init.body)) as Record<string, unknown>) : {};
    const json = (status: number, b: unknown) => new Response(JSON.stringify(b), { status });
    switch (u.pathname) {
      case "/_matrix/client/v3/login":
        logins.push(body);
        if (body.password !== PASSWORD) return json(403, { errcode: "M_FORBIDDEN", error: "bad password" });
        return json(200, {
          user_id: "@alice:hs",
          access_token: TOKEN,
          device_id: (body.device_id as string) ?? "NEWDEV",
        });
      case "/_matrix/client/v3/register":
        registerCalls++;
        if (!body.auth) return json(401, { flows: [{ stages: ["m.login.dummy"] }], session: "uia1" });
        assert.deepEqual(body.auth, { type: "m.login.dummy", session: "uia1" });
        return json(200, { user_id: "@bob:hs", access_token: TOKEN, device_id: "BOBDEV" });
      case "/_matrix/client/v3/sync":
        return json(401, { errcode: "M_UNKNOWN_TOKEN", error: "expired", soft_logout: true });
      default:
        return json(404, { errcode: "M_UNRECOGNIZED" });
    }
  };
  return { fetch, logins, registerCalls: () => registerCalls };
}

function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (obj?: unknown, msg?: string) => void lines.push(JSON.stringify(obj) + (msg ?? ""));
  return { lines, debug: log, info: log, warn: log, error: log };
}

describe("session", () => {
  it("logs in by localpart, and a second login as the stored user reuses the device", async () => {
    const srv = fakeServer();
    const store = new MemoryClientStore();
    const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch: srv.fetch });
    assert.deepEqual(await c.login({ user: "alice", password: PASSWORD }), {
      userId: "@alice:hs",
      deviceId: "NEWDEV",
      homeserverUrl: "https://hs",
    });
    const again = new MatrixClient({ homeserverUrl: "https://hs", store, fetch: srv.fetch });
    await again.login({ user: "@alice:hs", password: PASSWORD });
    assert.equal(again.deviceId, "NEWDEV");
    assert.deepEqual(srv.logins[0]?.identifier, { type: "m.id.user", user: "alice" });
    assert.equal(srv.logins[0]?.device_id, undefined);
    assert.equal(srv.logins[1]?.device_id, "NEWDEV");
  });

  it("completes the dummy registration stage", async () => {
    const srv = fakeServer();
    const c = new MatrixClient({ homeserverUrl: "https://hs", fetch: srv.fetch });
    const info = await c.register({ username: "bob", password: "pw" });
    assert.equal(info.deviceId, "BOBDEV");
    assert.equal(srv.registerCalls(), 2);
  });

  it("refuses to send a stored token to another homeserver", async () => {
    const store = new MemoryClientStore();
    await store.saveSession({
      homeserverUrl: "https://other",
      userId: "@a:other",
      deviceId: "D",
      accessToken: TOKEN,
    });
    const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch: fakeServer().fetch });
    await assert.rejects(
      c.restore(),
      (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT",
    );
    assert.equal(c.isLoggedIn, false);
  });

  it("requires a session for authenticated calls", async () => {
    const c = new MatrixClient({ homeserverUrl: "https://hs", fetch: fakeServer().fetch });
    await assert.rejects(c.whoami(), (e: unknown) => e instanceof ClientError && e.code === "NOT_LOGGED_IN");
    assert.throws(() => c.userId, ClientError);
  });

  it("keeps the device on soft logout", async () => {
    const srv = fakeServer();
    const store = new MemoryClientStore();
    const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch: srv.fetch });
    await c.login({ user: "alice", password: PASSWORD });
    const events: boolean[] = [];
    c.on("session.loggedOut", (i) => void events.push(i.softLogout));
    await assert.rejects(c.startSync(), MatrixError);
    assert.deepEqual(events, [true]);
    assert.equal(c.isLoggedIn, false);
    assert.equal((await store.loadSession())?.deviceId, "NEWDEV");
  });

  it("a revoked token is recognised although the error body's other fields are malformed", async () => {
    const store = new MemoryClientStore();
    const fetch = async (url: string): Promise<Response> =>
      new URL(url).pathname.endsWith("/login")
        ? Response.json({ user_id: "@alice:hs", access_token: TOKEN, device_id: "DEV" })
        : Response.json({ errcode: "M_UNKNOWN_TOKEN", error: null, soft_logout: "no" }, { status: 401 });
    const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch });
    await c.login({ user: "alice", password: PASSWORD });
    const events: boolean[] = [];
    c.on("session.loggedOut", (i) => void events.push(i.softLogout));
    await assert.rejects(
      c.startSync(),
      (e: unknown) => e instanceof MatrixError && e.errcode === "M_UNKNOWN_TOKEN",
    );
    assert.deepEqual(events, [false]);
    assert.equal(c.isLoggedIn, false);
    assert.equal(await store.loadSession(), undefined);
  });

  it("never puts the token or password into logs, errors or inspection output", async () => {
    const srv = fakeServer();
    const logger = capturingLogger();
    const c = new MatrixClient({ homeserverUrl: "https://hs", fetch: srv.fetch, logger });
    const failed = await c.login({ user: "alice", password: "wrong" }).catch((e: unknown) => e);
    await c.login({ user: "alice", password: PASSWORD });
    const syncErr = await c.startSync().catch((e: unknown) => e);
    const texts = [
      ...logger.lines,
      inspect(c),
      JSON.stringify(c),
      inspect(c.http),
      inspect(failed, { depth: 5 }),
      inspect(syncErr, { depth: 5 }),
      String(failed),
    ];
    assert.ok(logger.lines.length > 0);
    for (const t of texts) {
      assert.ok(!t.includes(TOKEN), `token leaked: ${t.slice(0, 200)}`);
      assert.ok(!t.includes(PASSWORD), `password leaked: ${t.slice(0, 200)}`);
    }
  });
});

describe("a login answer the client could not use", () => {
  // Each was taken and saved; then every request failed: a token no HTTP header carries as a
  // (retried) network error, a user ID with a lone surrogate as a URIError (encodeURIComponent).
  const bad: [string, Record<string, string>][] = [
    ["a token with a line break", { access_token: "syt_a\nb" }],
    ["a token with a lone surrogate", { access_token: "syt_\ud800" }],
    ["a token past U+00FF", { access_token: "syt_\u4e2d" }],
    ["a user ID with a lone surrogate", { user_id: "@al\ud800ice:hs" }],
    ["a device ID with a lone surrogate", { device_id: "D\udc00" }],
    ["a device ID past MAX_SESSION_ID_LENGTH", { device_id: "D".repeat(256) }],
  ];
  for (const [what, fields] of bad) {
    it(`is refused as malformed and saves nothing: ${what}`, async () => {
      let answer = { user_id: "@alice:hs", access_token: TOKEN, device_id: "DEV", ...fields };
      const fetch = async (url: string, init: RequestInit): Promise<Response> => {
        new Headers(init.headers); // as the platform's fetch does: throws on a value no header can carry
        const p = new URL(url).pathname;
        // JSON.stringify writes a lone surrogate as its escape, which JSON.parse gives back as it is.
        if (p.endsWith("/login") || p.endsWith("/register")) return new Response(JSON.stringify(answer));
        if (p.endsWith("/whoami")) return Response.json({ user_id: answer.user_id });
        if (p.includes("/profile/")) return Response.json({});
        return Response.json({ errcode: "M_UNRECOGNIZED" }, { status: 404 });
      };
      const store = new MemoryClientStore();
      const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch });
      for (const attempt of [
        () => c.login({ user: "alice", password: PASSWORD }),
        () => c.register({ username: "alice", password: PASSWORD }),
      ]) {
        await assert.rejects(attempt(), MalformedResponseError);
        assert.equal(c.isLoggedIn, false);
        assert.equal(await store.loadSession(), undefined);
      }
      answer = { user_id: "@alice:hs", access_token: TOKEN, device_id: "DEV" };
      await c.login({ user: "alice", password: PASSWORD });
      assert.equal((await c.whoami()).user_id, "@alice:hs");
      assert.deepEqual(await c.getProfile(c.userId), {});
    });
  }
});

describe("a stored session whose token no HTTP header can carry", () => {
  it("is refused by restore with an error that does not quote the token", async () => {
    const secret = "syt_secret\nrest";
    const store = new MemoryClientStore();
    await store.saveSession({
      homeserverUrl: "https://hs",
      userId: "@a:hs",
      deviceId: "D",
      accessToken: secret,
    });
    const fetch = async (_url: string, init: RequestInit): Promise<Response> => {
      new Headers(init.headers); // as the platform's fetch does (its error quotes the header value)
      return Response.json({ user_id: "@a:hs" });
    };
    const c = new MatrixClient({ homeserverUrl: "https://hs", store, fetch });
    const err = await c.restore().then(
      () => assert.fail("restored"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ClientError && err.code === "INVALID_ARGUMENT", String(err));
    assert.ok(!inspect(err, { depth: 5 }).includes("syt_secret"));
    assert.equal(c.isLoggedIn, false);
  });
});

describe("session store shared by tabs on one device", () => {
  // Spec-compliant server: a login naming an existing device invalidates that device's older tokens
  // (Conduit/Dendrite keep one token per device). /logout with a dead token: M_UNKNOWN_TOKEN.
  function server() {
    const live = new Map<string, string>(); // token -> device
    let n = 0;
    const fetch = async (url: string, init: RequestInit): Promise<Response> => {
      const u = new URL(url);
      const body = init.body ? (JSON.parse(String(init.body)) as Record<string, unknown>) : {};
      const auth = new Headers(init.headers).get("authorization")?.replace("Bearer ", "");
      const json = (status: number, b: unknown) => new Response(JSON.stringify(b), { status });
      if (u.pathname === "/_matrix/client/v3/login") {
        const device = (body.device_id as string | undefined) ?? "DEV1";
        for (const [t, d] of live) if (d === device) live.delete(t);
        const token = `tok${++n}`;
        live.set(token, device);
        return json(200, { user_id: "@alice:hs", access_token: token, device_id: device });
      }
      if (auth === undefined || !live.has(auth))
        return json(401, { errcode: "M_UNKNOWN_TOKEN", error: "gone", soft_logout: false });
      if (u.pathname === "/_matrix/client/v3/logout") {
        const d = live.get(auth);
        for (const [t, dd] of live) if (dd === d) live.delete(t);
        return json(200, {});
      }
      return json(404, { errcode: "M_UNRECOGNIZED" });
    };
    return { fetch, live };
  }

  it("a logout whose token was already replaced on its device keeps the tab that replaced it; one that deletes the device clears", async () => {
    const srv = server();
    const shared = new MemoryClientStore();
    const tab1 = new MatrixClient({ homeserverUrl: "https://hs", store: shared, fetch: srv.fetch });
    await tab1.login({ user: "alice", password: "pw" });
    const tab2 = new MatrixClient({ homeserverUrl: "https://hs", store: shared, fetch: srv.fetch });
    await tab2.login({ user: "alice", password: "pw" }); // reuses DEV1 (stored), new token
    assert.equal(tab2.deviceId, tab1.deviceId);
    const t2 = (await shared.loadSession())?.accessToken;
    assert.ok(t2 !== undefined && srv.live.has(t2), "tab 2's token is live");
    await tab1.logout(); // its token is dead: M_UNKNOWN_TOKEN is taken as logged out
    assert.ok(srv.live.has(t2), "tab 2's token is still valid on the server");
    assert.equal((await shared.loadSession())?.accessToken, t2, "tab 2's live session stays");
    await tab2.logout(); // the server deletes the device now
    assert.equal(await shared.loadSession(), undefined);
  });
});
