import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

describe("devserver basics", () => {
  let s: TestDevServer;
  before(async () => {
    s = await startTestDevServer();
  });
  after(() => s.close());

  it("advertises versions and well-known", async () => {
    const v = await s.api("GET", "/_matrix/client/versions");
    assert.equal(v.status, 200);
    assert.ok(v.json.versions.includes("v1.11"), 'v.json.versions.includes("v1.11")');
    assert.equal(v.headers.get("access-control-allow-origin"), "*");
    const wk = await s.api("GET", "/.well-known/matrix/client");
    assert.equal(wk.json["m.homeserver"].base_url, s.baseUrl);
  });

  it("register challenges with UIA flows and a session", async () => {
    const r = await s.api("POST", "/register", { body: { username: "uiacheck", password: "pw" } });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json.flows, [{ stages: ["m.login.dummy"] }]);
    assert.equal(typeof r.json.session, "string");
    const done = await s.api("POST", "/register", {
      body: {
        username: "uiacheck",
        password: "pw",
        auth: { type: "m.login.dummy", session: r.json.session },
      },
    });
    assert.equal(done.status, 200);
    assert.equal(done.json.user_id, `@uiacheck:${s.serverName}`);
    const again = await s.api("POST", "/register", {
      body: { username: "uiacheck", password: "pw", auth: { type: "m.login.dummy" } },
    });
    assert.equal(again.status, 400);
    assert.equal(again.json.errcode, "M_USER_IN_USE");
  });

  it("register without a username gets a generated one through the same UIA session", async () => {
    const first = await s.api("POST", "/register", { body: { password: "pw" } });
    assert.equal(first.status, 401);
    const done = await s.api("POST", "/register", {
      body: { password: "pw", auth: { type: "m.login.dummy", session: first.json.session } },
    });
    assert.equal(done.status, 200);
    assert.match(done.json.user_id, /^@user_[a-z0-9]+:localhost$/);
    const bad = await s.api("POST", "/register", {
      body: { username: "Not Valid!", auth: { type: "m.login.dummy" } },
    });
    assert.equal(bad.json.errcode, "M_INVALID_USERNAME");
  });

  it("login, whoami, logout; the old token is then unknown", async () => {
    const u = await s.register("loginuser", "secret");
    const bad = await s.api("POST", "/login", {
      body: {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "loginuser" },
        password: "nope",
      },
    });
    assert.equal(bad.status, 403);
    assert.equal(bad.json.errcode, "M_FORBIDDEN");
    const u2 = await s.login(u, "MYDEVICE");
    assert.equal(u2.deviceId, "MYDEVICE");
    const who = await s.api("GET", "/account/whoami", { token: u2.accessToken });
    assert.deepEqual(who.json, { user_id: u.userId, device_id: "MYDEVICE", is_guest: false });
    assert.equal((await s.api("POST", "/logout", { token: u2.accessToken, body: {} })).status, 200);
    const gone = await s.api("GET", "/account/whoami", { token: u2.accessToken });
    assert.equal(gone.status, 401);
    assert.equal(gone.json.errcode, "M_UNKNOWN_TOKEN");
    const missing = await s.api("GET", "/account/whoami");
    assert.equal(missing.json.errcode, "M_MISSING_TOKEN");
  });

  it("a port in use is reported, not swallowed", async () => {
    const port = Number(new URL(s.baseUrl).port);
    const { startDevServer } = await import("../../src/devserver/index.ts");
    await assert.rejects(startDevServer({ port, memory: true }), { code: "EADDRINUSE" });
  });

  it("unknown endpoints answer M_UNRECOGNIZED with 404, wrong methods with 405", async () => {
    const r = await s.api("GET", "/no/such/thing");
    assert.equal(r.status, 404);
    assert.equal(r.json.errcode, "M_UNRECOGNIZED");
    const m = await s.api("DELETE", "/account/whoami");
    assert.equal(m.status, 405);
    assert.equal(m.json.errcode, "M_UNRECOGNIZED");
  });

  it("create room, send, sync, long-poll wakes on a new event", async () => {
    const alice = await s.register();
    const bob = await s.register();
    const room = await s.api("POST", "/createRoom", {
      token: alice.accessToken,
      body: { invite: [bob.userId], name: "Test" },
    });
    assert.equal(room.status, 200);
    const roomId: string = room.json.room_id;
    const bobSync = await s.api("GET", "/sync", { token: bob.accessToken });
    assert.ok(bobSync.json.rooms.invite[roomId], "bobSync.json.rooms.invite[roomId]");
    assert.equal(
      (await s.api("POST", `/join/${encodeURIComponent(roomId)}`, { token: bob.accessToken })).status,
      200,
    );
    const sent = await s.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, {
      token: alice.accessToken,
      body: { msgtype: "m.text", body: "hello" },
    });
    const again = await s.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, {
      token: alice.accessToken,
      body: { msgtype: "m.text", body: "hello" },
    });
    assert.equal(again.json.event_id, sent.json.event_id, "same txn ID gives the same event");
    assert.match(sent.json.event_id, /^\$[A-Za-z0-9_-]{43}$/);
    const s1 = await s.api("GET", "/sync", { token: bob.accessToken });
    const tl = s1.json.rooms.join[roomId].timeline.events;
    assert.equal(tl[tl.length - 1].content.body, "hello");
    const poll = s.api("GET", `/sync?since=${s1.json.next_batch}&timeout=30000`, { token: bob.accessToken });
    await s.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t2`, {
      token: alice.accessToken,
      body: { msgtype: "m.text", body: "wake up" },
    });
    const woke = await poll;
    const events = woke.json.rooms.join[roomId].timeline.events;
    assert.equal(events.length, 1);
    assert.equal(events[0].content.body, "wake up");
    assert.equal(events[0].unsigned.transaction_id, undefined, "txn id only for the sending device");
    // Floats have no canonical JSON form, so they cannot be in an event.
    const float = await s.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t3`, {
      token: alice.accessToken,
      body: { body: "x", n: 1.5 },
    });
    assert.equal(float.status, 400);
    assert.equal(float.json.errcode, "M_BAD_JSON");
    const big = await s.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t4`, {
      token: alice.accessToken,
      body: { body: "x".repeat(70_000) },
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.errcode, "M_TOO_LARGE");
  });
});
