// Devices (UIA deletion), key backup, account data, profile, media, filters, CORS, rate limits.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

describe("devserver account endpoints", () => {
  let s: TestDevServer;
  before(async () => {
    s = await startTestDevServer();
  });
  after(() => s.close());

  it("deleting a device needs the password; it removes tokens, keys and queues", async () => {
    const u = await s.register("devowner", "right");
    const other = await s.login(u, "SECOND");
    await s.api("POST", "/keys/upload", {
      token: other.accessToken,
      body: { one_time_keys: { "signed_curve25519:X": { key: "x" } } },
    });
    const list = await s.api("GET", "/devices", { token: u.accessToken });
    assert.equal(list.json.devices.length, 2);
    await s.api("PUT", "/devices/SECOND", { token: u.accessToken, body: { display_name: "Phone" } });
    assert.equal(
      (await s.api("GET", "/devices/SECOND", { token: u.accessToken })).json.display_name,
      "Phone",
    );
    const challenge = await s.api("DELETE", "/devices/SECOND", { token: u.accessToken, body: {} });
    assert.equal(challenge.status, 401);
    assert.deepEqual(challenge.json.flows, [{ stages: ["m.login.password"] }]);
    const wrong = await s.api("DELETE", "/devices/SECOND", {
      token: u.accessToken,
      body: {
        auth: {
          type: "m.login.password",
          session: challenge.json.session,
          identifier: { type: "m.id.user", user: u.userId },
          password: "wrong",
        },
      },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.errcode, "M_FORBIDDEN");
    const ok = await s.api("DELETE", "/devices/SECOND", {
      token: u.accessToken,
      body: {
        auth: {
          type: "m.login.password",
          session: challenge.json.session,
          identifier: { type: "m.id.user", user: u.userId },
          password: "right",
        },
      },
    });
    assert.equal(ok.status, 200);
    assert.equal(
      (await s.api("GET", "/account/whoami", { token: other.accessToken })).json.errcode,
      "M_UNKNOWN_TOKEN",
    );
    const claim = await s.api("POST", "/keys/claim", {
      token: u.accessToken,
      body: { one_time_keys: { [u.userId]: { SECOND: "signed_curve25519" } } },
    });
    assert.deepEqual(claim.json.one_time_keys, {});
  });

  it("key backup: versions, wrong-version uploads, replacement rules, etag and count", async () => {
    const u = await s.register();
    const t = u.accessToken;
    assert.equal((await s.api("GET", "/room_keys/version", { token: t })).json.errcode, "M_NOT_FOUND");
    const algorithm = "m.megolm_backup.v1.curve25519-aes-sha2";
    const v1 = (
      await s.api("POST", "/room_keys/version", {
        token: t,
        body: { algorithm, auth_data: { public_key: "a" } },
      })
    ).json.version as string;
    const v2 = (
      await s.api("POST", "/room_keys/version", {
        token: t,
        body: { algorithm, auth_data: { public_key: "b" } },
      })
    ).json.version as string;
    const key = (fmi: number, fc: number, verified: boolean, tag: string) => ({
      first_message_index: fmi,
      forwarded_count: fc,
      is_verified: verified,
      session_data: { tag },
    });
    const old = await s.api("PUT", `/room_keys/keys/!r:x/s1?version=${v1}`, {
      token: t,
      body: key(0, 0, false, "x"),
    });
    assert.equal(old.status, 403);
    assert.equal(old.json.errcode, "M_WRONG_ROOM_KEYS_VERSION");
    assert.equal(old.json.current_version, v2);
    const put = await s.api("PUT", `/room_keys/keys/!r:x/s1?version=${v2}`, {
      token: t,
      body: key(5, 0, false, "first"),
    });
    assert.deepEqual(put.json, { etag: "1", count: 1 });
    const worse = await s.api("PUT", `/room_keys/keys/!r:x/s1?version=${v2}`, {
      token: t,
      body: key(7, 0, false, "worse"),
    });
    assert.deepEqual(worse.json, { etag: "1", count: 1 }, "a later first index does not replace");
    await s.api("PUT", `/room_keys/keys/!r:x/s1?version=${v2}`, {
      token: t,
      body: key(9, 3, true, "verified"),
    });
    const got = await s.api("GET", `/room_keys/keys/!r:x/s1?version=${v2}`, { token: t });
    assert.deepEqual(got.json.session_data, { tag: "verified" }, "verified beats unverified");
    await s.api("PUT", `/room_keys/keys?version=${v2}`, {
      token: t,
      body: {
        rooms: {
          "!r:x": { sessions: { s2: key(0, 0, true, "s2") } },
          "!q:x": { sessions: { s3: key(0, 0, true, "s3") } },
        },
      },
    });
    const info = await s.api("GET", "/room_keys/version", { token: t });
    assert.equal(info.json.version, v2);
    assert.equal(info.json.count, 3);
    const all = await s.api("GET", `/room_keys/keys?version=${v2}`, { token: t });
    assert.deepEqual(Object.keys(all.json.rooms).sort(), ["!q:x", "!r:x"]);
    const del = await s.api("DELETE", `/room_keys/keys/!r:x?version=${v2}`, { token: t });
    assert.equal(del.json.count, 1);
    const upd = await s.api("PUT", `/room_keys/version/${v2}`, {
      token: t,
      body: { algorithm: "other", auth_data: {} },
    });
    assert.equal(upd.status, 400);
    assert.equal((await s.api("DELETE", `/room_keys/version/${v2}`, { token: t })).status, 200);
    assert.equal((await s.api("GET", "/room_keys/version", { token: t })).json.version, v1);
    assert.equal((await s.api("GET", `/room_keys/version/${v2}`, { token: t })).status, 404);
  });

  it("account data global and per room; server-managed types refused; sync delivers them", async () => {
    const u = await s.register();
    const uid = encodeURIComponent(u.userId);
    const t0 = (await s.api("GET", "/sync", { token: u.accessToken })).json.next_batch as string;
    await s.api("PUT", `/user/${uid}/account_data/m.direct`, {
      token: u.accessToken,
      body: { "@x:y": ["!r:y"] },
    });
    await s.api("PUT", `/user/${uid}/rooms/${encodeURIComponent("!r:y")}/account_data/m.tag`, {
      token: u.accessToken,
      body: { tags: {} },
    });
    const managed = await s.api("PUT", `/user/${uid}/account_data/m.push_rules`, {
      token: u.accessToken,
      body: {},
    });
    assert.equal(managed.status, 400);
    const sync = await s.api("GET", `/sync?since=${t0}`, { token: u.accessToken });
    assert.deepEqual(sync.json.account_data.events, [{ type: "m.direct", content: { "@x:y": ["!r:y"] } }]);
    const other = await s.register();
    const denied = await s.api("GET", `/user/${uid}/account_data/m.direct`, { token: other.accessToken });
    assert.equal(denied.status, 403);
  });

  it("profile changes show up in room memberships", async () => {
    const u = await s.register();
    const room = (await s.api("POST", "/createRoom", { token: u.accessToken, body: {} })).json
      .room_id as string;
    await s.api("PUT", `/profile/${encodeURIComponent(u.userId)}/displayname`, {
      token: u.accessToken,
      body: { displayname: "New Name" },
    });
    const p = await s.api("GET", `/profile/${encodeURIComponent(u.userId)}`);
    assert.equal(p.json.displayname, "New Name");
    const m = await s.api(
      "GET",
      `/rooms/${encodeURIComponent(room)}/state/m.room.member/${encodeURIComponent(u.userId)}`,
      {
        token: u.accessToken,
      },
    );
    assert.equal(m.json.displayname, "New Name");
    assert.equal((await s.api("GET", "/profile/%40nobody%3Alocalhost")).status, 404);
  });

  it("media: upload, download (legacy and authenticated), thumbnail, config", async () => {
    const u = await s.register();
    const bytes = Buffer.from("hello media");
    const up = await fetch(`${s.baseUrl}/_matrix/media/v3/upload?filename=hi.txt`, {
      method: "POST",
      headers: { Authorization: `Bearer ${u.accessToken}`, "Content-Type": "text/plain" },
      body: bytes,
    });
    const { content_uri } = (await up.json()) as { content_uri: string };
    assert.match(content_uri, /^mxc:\/\/localhost\/[A-Za-z0-9_-]+$/);
    const path = content_uri.slice("mxc://".length);
    const legacy = await fetch(`${s.baseUrl}/_matrix/media/v3/download/${path}`);
    assert.equal(await legacy.text(), "hello media");
    assert.equal(legacy.headers.get("content-type"), "text/plain");
    const unauth = await fetch(`${s.baseUrl}/_matrix/client/v1/media/download/${path}`);
    assert.equal(unauth.status, 401);
    const authd = await fetch(`${s.baseUrl}/_matrix/client/v1/media/download/${path}`, {
      headers: { Authorization: `Bearer ${u.accessToken}` },
    });
    assert.equal(Buffer.from(await authd.arrayBuffer()).equals(bytes), true);
    // Thumbnails are the original image; media of other types has none (400, as the spec says).
    const thumbOf = (p: string, query = "width=32&height=32") =>
      fetch(`${s.baseUrl}/_matrix/client/v1/media/thumbnail/${p}?${query}`, {
        headers: { Authorization: `Bearer ${u.accessToken}` },
      });
    const noThumb = await thumbOf(path);
    assert.equal(noThumb.status, 400);
    assert.equal(((await noThumb.json()) as { errcode: string }).errcode, "M_UNKNOWN");
    const png = await fetch(`${s.baseUrl}/_matrix/media/v3/upload`, {
      method: "POST",
      headers: { Authorization: `Bearer ${u.accessToken}`, "Content-Type": "Image/PNG" },
      body: bytes,
    });
    const pngPath = ((await png.json()) as { content_uri: string }).content_uri.slice("mxc://".length);
    const thumb = await thumbOf(pngPath, "width=32&height=32&method=crop&animated=false");
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get("content-type"), "image/png");
    assert.equal(thumb.headers.get("content-disposition"), 'inline; filename="thumbnail.png"');
    assert.equal(Buffer.from(await thumb.arrayBuffer()).equals(bytes), true);
    assert.equal((await thumbOf(pngPath, "width=32&height=32&method=stretch")).status, 400);
    assert.equal((await thumbOf(pngPath, "width=32")).status, 400);
    const cfg = await s.api("GET", "/_matrix/client/v1/media/config", { token: u.accessToken });
    assert.ok(cfg.json["m.upload.size"] > 0, 'cfg.json["m.upload.size"] > 0');
    assert.equal((await fetch(`${s.baseUrl}/_matrix/media/v3/download/localhost/nope`)).status, 404);
    // Asynchronous upload: reserve, see it pending, upload once, never overwrite.
    const created = await s.api("POST", "/_matrix/media/v1/create", { token: u.accessToken, body: {} });
    const reserved = (created.json.content_uri as string).slice("mxc://".length);
    assert.ok(created.json.unused_expires_at > Date.now(), "reservation expires in the future");
    const early = await fetch(`${s.baseUrl}/_matrix/media/v3/download/${reserved}`);
    assert.equal(early.status, 504);
    assert.equal(((await early.json()) as { errcode: string }).errcode, "M_NOT_YET_UPLOADED");
    const putIt = (body: string) =>
      fetch(`${s.baseUrl}/_matrix/media/v3/upload/${reserved}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${u.accessToken}`, "Content-Type": "text/plain" },
        body,
      });
    assert.equal((await putIt("later bytes")).status, 200);
    assert.equal(
      await (await fetch(`${s.baseUrl}/_matrix/media/v3/download/${reserved}`)).text(),
      "later bytes",
    );
    const again = await putIt("other bytes");
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { errcode: string }).errcode, "M_CANNOT_OVERWRITE_MEDIA");
  });

  it("filters round-trip and are honoured by sync; bad JSON bodies are M_NOT_JSON", async () => {
    const u = await s.register();
    const f = await s.api("POST", `/user/${encodeURIComponent(u.userId)}/filter`, {
      token: u.accessToken,
      body: { room: { timeline: { limit: 1 } } },
    });
    const back = await s.api("GET", `/user/${encodeURIComponent(u.userId)}/filter/${f.json.filter_id}`, {
      token: u.accessToken,
    });
    assert.deepEqual(back.json, { room: { timeline: { limit: 1 } } });
    await s.api("POST", "/createRoom", { token: u.accessToken, body: { name: "x" } });
    const sync = await s.api("GET", `/sync?filter=${f.json.filter_id}`, { token: u.accessToken });
    const room = Object.values(sync.json.rooms.join)[0] as {
      timeline: { events: unknown[]; limited: boolean };
    };
    assert.equal(room.timeline.events.length, 1);
    assert.equal(room.timeline.limited, true);
    const res = await fetch(`${s.baseUrl}/_matrix/client/v3/createRoom`, {
      method: "POST",
      headers: { Authorization: `Bearer ${u.accessToken}`, "Content-Type": "application/json" },
      body: "{not json",
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { errcode: string }).errcode, "M_NOT_JSON");
  });

  it("room tags, presence, TURN discovery and timestamp_to_event", async () => {
    const u = await s.register();
    const uid = encodeURIComponent(u.userId);
    const room = (await s.api("POST", "/createRoom", { token: u.accessToken, body: {} })).json
      .room_id as string;
    const r = encodeURIComponent(room);
    await s.api("PUT", `/user/${uid}/rooms/${r}/tags/m.favourite`, {
      token: u.accessToken,
      body: { order: 0.5 },
    });
    await s.api("PUT", `/user/${uid}/rooms/${r}/tags/u.work`, { token: u.accessToken, body: {} });
    await s.api("DELETE", `/user/${uid}/rooms/${r}/tags/u.work`, { token: u.accessToken });
    const tags = await s.api("GET", `/user/${uid}/rooms/${r}/tags`, { token: u.accessToken });
    assert.deepEqual(tags.json, { tags: { "m.favourite": { order: 0.5 } } });
    const sync = await s.api("GET", "/sync", { token: u.accessToken });
    assert.deepEqual(sync.json.rooms.join[room].account_data.events, [
      { type: "m.tag", content: { tags: { "m.favourite": { order: 0.5 } } } },
    ]);

    assert.equal(
      (await s.api("GET", `/presence/${uid}/status`, { token: u.accessToken })).json.presence,
      "offline",
    );
    await s.api("PUT", `/presence/${uid}/status`, {
      token: u.accessToken,
      body: { presence: "online", status_msg: "hi" },
    });
    const p = await s.api("GET", `/presence/${uid}/status`, { token: u.accessToken });
    assert.equal(p.json.presence, "online");
    assert.equal(p.json.status_msg, "hi");
    assert.deepEqual((await s.api("GET", "/voip/turnServer", { token: u.accessToken })).json, {});

    const sent = await s.api("PUT", `/rooms/${r}/send/m.room.message/ts1`, {
      token: u.accessToken,
      body: { body: "t" },
    });
    const near = (ts: number, dir: string) =>
      s.api("GET", `/_matrix/client/v1/rooms/${r}/timestamp_to_event?ts=${ts}&dir=${dir}`, {
        token: u.accessToken,
      });
    const later = Date.now() + 60_000;
    assert.equal((await near(later, "b")).json.event_id, sent.json.event_id, "latest event at or before");
    const first = await near(0, "f");
    const create = await s.api("GET", `/rooms/${r}/state/m.room.create?format=event`, {
      token: u.accessToken,
    });
    assert.equal(first.json.event_id, create.json.event_id, "earliest event at or after");
    assert.equal((await near(later, "f")).status, 404);
    assert.equal((await near(0, "x")).status, 400);
  });

  it("CORS preflight answers with the allowed methods and headers", async () => {
    const res = await fetch(`${s.baseUrl}/_matrix/client/v3/sync`, { method: "OPTIONS" });
    assert.ok(res.status === 200 || res.status === 204, "res.status === 200 || res.status === 204");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("access-control-allow-headers") ?? "", /Authorization/);
  });
});

describe("devserver refresh tokens", () => {
  /** A devserver whose token clock the test steps; `refresh(token)` posts to `/refresh`. */
  async function stepped(lifetimeMs: number) {
    let now = 1_000_000;
    const s = await startTestDevServer({ accessTokenLifetimeMs: lifetimeMs, now: () => now });
    const refresh = (refreshToken: string) =>
      s.api("POST", "/refresh", { body: { refresh_token: refreshToken } });
    const whoami = (token: string) => s.api("GET", "/account/whoami", { token });
    const login = async (user: string) =>
      (
        await s.api("POST", "/login", {
          body: {
            type: "m.login.password",
            identifier: { type: "m.id.user", user },
            password: "pw",
            refresh_token: true,
          },
        })
      ).json;
    const step = (ms: number) => {
      now += ms;
    };
    return { s, refresh, whoami, login, step };
  }

  it("expired access tokens are a soft logout; a refresh gives new tokens", async () => {
    const { s, refresh, whoami, login, step } = await stepped(10_000);
    try {
      const u = await s.register("refresher", "pw");
      assert.equal((await whoami(u.accessToken)).status, 200, "no refresh: no expiry");
      const first = await login("refresher");
      assert.equal(typeof first.refresh_token, "string");
      assert.equal(first.expires_in_ms, 10_000);
      step(9_999);
      assert.equal((await whoami(first.access_token)).status, 200, "good until its lifetime is over");
      step(1);
      const expired = await whoami(first.access_token);
      assert.equal(expired.status, 401);
      assert.equal(expired.json.errcode, "M_UNKNOWN_TOKEN");
      assert.equal(expired.json.soft_logout, true);
      const refreshed = await refresh(first.refresh_token);
      assert.equal(refreshed.status, 200);
      assert.notEqual(refreshed.json.access_token, first.access_token);
      assert.notEqual(refreshed.json.refresh_token, first.refresh_token);
      assert.equal(refreshed.json.expires_in_ms, 10_000);
      assert.equal((await whoami(refreshed.json.access_token)).status, 200);
      const unknown = await refresh("krr_unknown");
      assert.equal(unknown.status, 401);
      assert.equal(unknown.json.errcode, "M_UNKNOWN_TOKEN");
      assert.equal(unknown.json.soft_logout, false);
    } finally {
      await s.close();
    }
  });

  it("the old refresh token stays good until the new access token is used", async () => {
    const { s, refresh, whoami, login } = await stepped(10_000);
    try {
      await s.register("lost", "pw");
      const first = await login("lost");
      // The answer was lost: the client asks again with the same token, and only the newest
      // answer stays good (as on Synapse).
      const lost = (await refresh(first.refresh_token)).json;
      const again = await refresh(first.refresh_token);
      assert.equal(again.status, 200, "a refresh token whose new tokens are unused is good again");
      assert.equal((await whoami(lost.access_token)).status, 401, "the lost answer's access token is gone");
      assert.equal((await refresh(lost.refresh_token)).status, 401, "and its refresh token");
      assert.equal((await whoami(again.json.access_token)).status, 200);
      const reused = await refresh(first.refresh_token);
      assert.equal(reused.status, 401, "spent once the new access token was used");
      assert.equal(reused.json.soft_logout, false);
    } finally {
      await s.close();
    }
  });

  it("the old refresh token stays good until the new refresh token is used", async () => {
    const { s, refresh, login } = await stepped(10_000);
    try {
      await s.register("chain", "pw");
      const first = await login("chain");
      const second = (await refresh(first.refresh_token)).json;
      assert.equal((await refresh(second.refresh_token)).status, 200);
      assert.equal((await refresh(first.refresh_token)).status, 401, "spent once its successor was");
    } finally {
      await s.close();
    }
  });
});

describe("devserver rate limit", () => {
  it("answers M_LIMIT_EXCEEDED with retry_after_ms once the burst is spent", async () => {
    const s = await startTestDevServer({ rateLimit: { perSecond: 0.5, burst: 2 } });
    try {
      const statuses: number[] = [];
      let last: { errcode?: string; retry_after_ms?: number } = {};
      for (let i = 0; i < 5; i++) {
        const r = await s.api("GET", "/_matrix/client/versions");
        statuses.push(r.status);
        last = r.json;
      }
      assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
      assert.equal(statuses[4], 429);
      assert.equal(last.errcode, "M_LIMIT_EXCEEDED");
      assert.ok((last.retry_after_ms ?? 0) > 0, "(last.retry_after_ms ?? 0) > 0");
    } finally {
      await s.close();
    }
  });
});
