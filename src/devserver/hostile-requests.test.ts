// Hostile clients against the devserver: whatever a request carries, the answer is a typed Matrix
// error (or a success when the request is valid), never a 500, and the server keeps working for
// everyone afterwards (`/versions`, a normal sync, a normal send and read back).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { startTestDevServer, type TestDevServer, type TestUser } from "../../test/support/devserver.ts";
import { Homeserver } from "./homeserver.ts";
import { MAX_FAILED_PASSWORDS } from "./password.ts";
import { MAX_EVENT_BYTES } from "./room-ops.ts";
import { MAX_UNAUTHENTICATED_BODY_BYTES } from "./route-context.ts";
import { MAX_JSON_BODY_DEPTH } from "./router.ts";
import { buildRouter } from "./routes/index.ts";
import { MAX_AVATAR_URL_LENGTH } from "./routes/profile.ts";
import { MAX_CREATE_ROOM_INITIAL_STATE, MAX_CREATE_ROOM_INVITES } from "./routes/rooms.ts";
import { Uia } from "./uia.ts";

let s: TestDevServer;
let u: TestUser;
let roomId: string;

before(async () => {
  s = await startTestDevServer();
  u = await s.register("hostile");
  roomId = (await s.api("POST", "/createRoom", { token: u.accessToken, body: {} })).json.room_id;
});
after(() => s.close());

const enc = encodeURIComponent;

/** A request with a raw (possibly malformed) body, without a token when `token` is ""; the answer's status and JSON. */
async function raw(
  method: string,
  path: string,
  body?: string,
  token: string = u.accessToken,
): Promise<{ status: number; json: { errcode?: string; [k: string]: unknown } }> {
  const url = path.startsWith("/_matrix") ? path : `/_matrix/client/v3${path}`;
  const res = await fetch(s.baseUrl + url, {
    method,
    headers: {
      ...(token === "" ? {} : { Authorization: `Bearer ${token}` }),
      "Content-Type": "application/json",
    },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text.length > 0 ? JSON.parse(text) : {} };
}

/** The server still answers, syncs and stores: a message sent now is read back. */
async function stillWorks(): Promise<void> {
  assert.equal((await s.api("GET", "/_matrix/client/versions")).status, 200);
  const first = await s.api("GET", "/sync?timeout=0", { token: u.accessToken });
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const txn = `ok${Math.random().toString(36).slice(2)}`;
  const sent = await s.api("PUT", `/rooms/${enc(roomId)}/send/m.room.message/${txn}`, {
    token: u.accessToken,
    body: { msgtype: "m.text", body: txn },
  });
  assert.equal(sent.status, 200, JSON.stringify(sent.json));
  const next = await s.api("GET", `/sync?timeout=0&since=${enc(first.json.next_batch)}`, {
    token: u.accessToken,
  });
  assert.equal(next.status, 200);
  const timeline = next.json.rooms.join[roomId].timeline.events as { event_id: string }[];
  assert.ok(timeline.some((e) => e.event_id === sent.json.event_id));
}

describe("deeply nested bodies", () => {
  const nested = (levels: number) => `${'{"a":'.repeat(levels - 1)}{}${"}".repeat(levels - 1)}`;
  const deepArray = (levels: number) => "[".repeat(levels) + "]".repeat(levels);
  const routes = (body: string): [string, string, string][] => [
    ["PUT", `/user/${enc(u.userId)}/account_data/m.hostile`, `{"x":${body}}`],
    ["PUT", `/user/${enc(u.userId)}/rooms/${enc(roomId)}/account_data/m.hostile`, `{"x":${body}}`],
    ["PUT", "/sendToDevice/m.hostile/deep", `{"messages":{"${u.userId}":{"${u.deviceId}":${body}}}}`],
    ["POST", "/keys/upload", `{"one_time_keys":{"signed_curve25519:AAAA":${body}}}`],
    [
      "POST",
      "/room_keys/version",
      `{"algorithm":"m.megolm_backup.v1.curve25519-aes-sha2","auth_data":${body}}`,
    ],
    ["POST", `/user/${enc(u.userId)}/filter`, `{"room":{"x":${body}}}`],
    ["PUT", `/rooms/${enc(roomId)}/send/m.room.message/deep`, `{"body":"x","x":${body}}`],
  ];

  it(`a body nesting deeper than MAX_JSON_BODY_DEPTH is M_BAD_JSON on every route, not a 500`, async () => {
    const bodies = [nested(MAX_JSON_BODY_DEPTH), deepArray(MAX_JSON_BODY_DEPTH), deepArray(30_000)];
    for (const body of [...bodies, nested(100_000)]) {
      for (const [method, path, b] of routes(body)) {
        const r = await raw(method, path, b);
        const what = `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`;
        // The filter route refuses a body past its own size bound first.
        if (r.status === 413) assert.equal(r.json.errcode, "M_TOO_LARGE", what);
        else assert.deepEqual([r.status, r.json.errcode], [400, "M_BAD_JSON"], what);
      }
    }
    await stillWorks();
  });

  it("a body just within the bound is taken and read back", async () => {
    const body = nested(MAX_JSON_BODY_DEPTH - 1);
    const put = await raw("PUT", `/user/${enc(u.userId)}/account_data/m.within`, body);
    assert.equal(put.status, 200, JSON.stringify(put.json));
    const got = await s.api("GET", `/user/${enc(u.userId)}/account_data/m.within`, { token: u.accessToken });
    assert.deepEqual(got.json, JSON.parse(body));
    await stillWorks();
  });
});

describe("createRoom", () => {
  it("events it writes from the request are held to MAX_EVENT_BYTES, and lists to their bounds", async () => {
    const joined = async () =>
      ((await s.api("GET", "/joined_rooms", { token: u.accessToken })).json.joined_rooms as string[]).length;
    const before = await joined();
    const big = "x".repeat(MAX_EVENT_BYTES);
    for (const body of [
      { name: big },
      { topic: big },
      { creation_content: { big } },
      { power_level_content_override: { big } },
    ]) {
      const r = await s.api("POST", "/createRoom", { token: u.accessToken, body });
      assert.deepEqual([r.status, r.json.errcode], [413, "M_TOO_LARGE"], Object.keys(body)[0]);
    }
    const many = <T>(n: number, item: T) => Array.from({ length: n }, () => item);
    for (const body of [
      { invite: many(MAX_CREATE_ROOM_INVITES + 1, u.userId) },
      { initial_state: many(MAX_CREATE_ROOM_INITIAL_STATE + 1, { type: "m.x", content: {} }) },
    ]) {
      const r = await s.api("POST", "/createRoom", { token: u.accessToken, body });
      assert.deepEqual([r.status, r.json.errcode], [400, "M_BAD_JSON"], Object.keys(body)[0]);
    }
    assert.equal(await joined(), before, "no room was created half-way");
    const ok = await s.api("POST", "/createRoom", {
      token: u.accessToken,
      body: { name: "fine", topic: "t" },
    });
    assert.equal(ok.status, 200);
    await stillWorks();
  });
});

describe("power levels", () => {
  it("users and events that are not objects of integers are M_BAD_JSON; the levels stay", async () => {
    const room = (await s.api("POST", "/createRoom", { token: u.accessToken, body: {} })).json
      .room_id as string;
    const path = `/rooms/${enc(room)}/state/m.room.power_levels/`;
    const before = (await s.api("GET", path, { token: u.accessToken })).json;
    for (const bad of [
      { users: "nope" },
      { users: { [u.userId]: "100" } },
      { users: { [u.userId]: 100, "not-a-user": 5 } },
      { users: { [u.userId]: 100 }, events: [] },
      { users: { [u.userId]: 100 }, events: { "m.room.name": 1.5 } },
    ]) {
      const r = await s.api("PUT", path, { token: u.accessToken, body: { ...before, ...bad } });
      assert.deepEqual([r.status, r.json.errcode], [400, "M_BAD_JSON"], JSON.stringify(bad));
      const create = await s.api("POST", "/createRoom", {
        token: u.accessToken,
        body: { power_level_content_override: bad },
      });
      assert.deepEqual(
        [create.status, create.json.errcode],
        [400, "M_BAD_JSON"],
        `createRoom ${JSON.stringify(bad)}`,
      );
    }
    assert.deepEqual((await s.api("GET", path, { token: u.accessToken })).json, before);
    const ok = await s.api("PUT", path, {
      token: u.accessToken,
      body: { ...before, events: { "m.room.name": 60 } },
    });
    assert.equal(ok.status, 200);
    await stillWorks();
  });
});

describe("profile", () => {
  it("an avatar URL past MAX_AVATAR_URL_LENGTH is M_BAD_JSON, and no membership event carries it", async () => {
    const path = `/profile/${enc(u.userId)}/avatar_url`;
    const long = `mxc://localhost/${"a".repeat(MAX_AVATAR_URL_LENGTH)}`;
    const r = await s.api("PUT", path, { token: u.accessToken, body: { avatar_url: long } });
    assert.deepEqual([r.status, r.json.errcode], [400, "M_BAD_JSON"]);
    const member = await s.api("GET", `/rooms/${enc(roomId)}/state/m.room.member/${enc(u.userId)}`, {
      token: u.accessToken,
    });
    assert.notEqual(member.json.avatar_url, long);
    const fine = `mxc://localhost/${"a".repeat(MAX_AVATAR_URL_LENGTH - 17)}`;
    assert.equal(
      (await s.api("PUT", path, { token: u.accessToken, body: { avatar_url: fine } })).status,
      200,
    );
    await stillWorks();
  });
});

describe("password guessing", () => {
  it(`past MAX_FAILED_PASSWORDS wrong ones, an account's password checks are 429 M_LIMIT_EXCEEDED`, async () => {
    const victim = await s.register("victim");
    const other = await s.register("bystander");
    const login = (who: TestUser, password: string) =>
      s.api("POST", "/login", {
        body: { type: "m.login.password", identifier: { type: "m.id.user", user: who.userId }, password },
      });
    for (let i = 0; i < MAX_FAILED_PASSWORDS; i++)
      assert.equal((await login(victim, `guess${i}`)).status, 403);
    const blocked = await login(victim, victim.password);
    assert.deepEqual([blocked.status, blocked.json.errcode], [429, "M_LIMIT_EXCEEDED"]);
    assert.ok(blocked.json.retry_after_ms > 0);
    // The UIA password stage counts too (deleting a device asks for it).
    const uia = await s.api("DELETE", `/devices/${enc(victim.deviceId)}`, {
      token: victim.accessToken,
      body: {
        auth: {
          type: "m.login.password",
          identifier: { type: "m.id.user", user: victim.userId },
          password: victim.password,
        },
      },
    });
    assert.deepEqual([uia.status, uia.json.errcode], [429, "M_LIMIT_EXCEEDED"]);
    // Other accounts are not held back, and the victim's sessions go on.
    assert.equal((await login(other, other.password)).status, 200);
    assert.equal((await s.api("GET", "/account/whoami", { token: victim.accessToken })).status, 200);
    await stillWorks();
  });
});

describe("body size", () => {
  it(`a request without a valid token has its body cut at MAX_UNAUTHENTICATED_BODY_BYTES`, async () => {
    const pad = "x".repeat(MAX_UNAUTHENTICATED_BODY_BYTES);
    for (const [path, token] of [
      ["/login", ""],
      ["/register", ""],
      ["/_matrix/media/v3/download/localhost/upload", ""],
      [`/user/${enc(u.userId)}/account_data/m.pad`, "not-a-token"],
    ] as const) {
      const r = await raw("POST", path, JSON.stringify({ type: "m.login.password", pad }), token);
      assert.ok(r.status === 413 || r.status === 401 || r.status === 405, `${path}: ${r.status}`);
      if (r.status === 413) assert.equal(r.json.errcode, "M_TOO_LARGE");
    }
    const login = await raw("POST", "/login", JSON.stringify({ type: "m.login.password", pad }), "");
    assert.deepEqual([login.status, login.json.errcode], [413, "M_TOO_LARGE"]);
    // With a token, JSON bodies and uploads keep their larger bounds.
    const put = await raw("PUT", `/user/${enc(u.userId)}/account_data/m.pad`, JSON.stringify({ pad }));
    assert.equal(put.status, 200);
    const upload = await fetch(`${s.baseUrl}/_matrix/media/v3/upload`, {
      method: "POST",
      headers: { Authorization: `Bearer ${u.accessToken}`, "Content-Type": "application/octet-stream" },
      body: Buffer.alloc(2 * 1024 * 1024),
    });
    assert.equal(upload.status, 200);
    await stillWorks();
  });
});

describe("query parameters", () => {
  it("/context: a negative or malformed limit is M_INVALID_PARAM, not the whole history", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await s.api("PUT", `/rooms/${enc(roomId)}/send/m.room.message/ctx${i}`, {
        token: u.accessToken,
        body: { msgtype: "m.text", body: `c${i}` },
      });
      ids.push(r.json.event_id);
    }
    const context = (limit: string) =>
      raw("GET", `/rooms/${enc(roomId)}/context/${enc(ids[3]!)}?limit=${enc(limit)}`);
    for (const bad of ["-2", "-1000", "1.5", "NaN", "1e400", "abc"]) {
      const r = await context(bad);
      assert.deepEqual([r.status, r.json.errcode], [400, "M_INVALID_PARAM"], `limit=${bad}`);
    }
    const two = await context("2");
    assert.equal(two.status, 200);
    const around = (two.json.events_before as unknown[]).length + (two.json.events_after as unknown[]).length;
    assert.ok(around <= 2, `${around} events around for limit=2`);
    assert.equal((await context("0")).status, 200);
    await stillWorks();
  });
});

/** Every v3 and media route (r0 aliases share their handlers). */
function routes(): [string, string][] {
  const hs = new Homeserver({ serverName: "localhost", dbPath: ":memory:" });
  try {
    return buildRouter({ hs, uia: new Uia(hs), baseUrl: () => "" })
      .list()
      .filter(([, p]) => !p.startsWith("/_matrix/client/r0/") && !p.startsWith("/_matrix/media/r0/"));
  } finally {
    hs.close();
  }
}

describe("every route, hostile input (property, fixed seed)", () => {
  it("answers 2xx or a 4xx Matrix error, and the server keeps working", async () => {
    // The fuzzer's own account: what it does to itself (devices, keys) leaves `u` alone.
    const f = await s.register("fuzzer");
    const fRoom = (await s.api("POST", "/createRoom", { token: f.accessToken, body: {} })).json.room_id;
    // Ending the fuzzer's own session would stop the sweep, not test the server.
    const all = routes().filter(([, p]) => !/\/logout(\/all)?$/.test(p));
    const id = fc.oneof(
      fc.constantFrom(fRoom, f.userId, f.deviceId, roomId, u.userId, "localhost", "m.room.message", ""),
      fc.constantFrom("..", "%2e%2e", "%", "%ZZ", "%ED%A0%80", "%00", "!", "@", "$", "#:", "a/b"),
      fc.string({ maxLength: 12 }),
      fc.integer({ min: 1, max: 5000 }).map((n) => "x".repeat(n)),
    );
    const nest = (levels: number, leaf: string) => `${'{"a":'.repeat(levels)}${leaf}${"}".repeat(levels)}`;
    const scalar = fc.constantFrom(
      '"\\ud800"',
      '"\\udfff x"',
      "1e400",
      "-1e400",
      "-0",
      "9007199254740993",
      "1.5",
      "null",
      "true",
      '"\\u0000"',
      "[]",
      "{}",
    );
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc
        .tuple(fc.integer({ min: MAX_JSON_BODY_DEPTH - 3, max: MAX_JSON_BODY_DEPTH + 3 }), scalar)
        .map(([n, leaf]) => nest(n, leaf)),
      // Known field names with values of the wrong type, out of range, or not JSON text at all.
      fc
        .dictionary(
          fc.constantFrom(
            "body",
            "msgtype",
            "messages",
            "one_time_keys",
            "fallback_keys",
            "device_keys",
            "auth",
            "type",
            "username",
            "password",
            "device_id",
            "timeout",
            "typing",
            "limit",
            "rooms",
            "sessions",
            "version",
            "algorithm",
            "auth_data",
            "display_name",
            "displayname",
            "avatar_url",
            "user_id",
            "reason",
            "room_id",
            "thread_id",
            "preset",
            "invite",
            "initial_state",
            "search_term",
            "room_version",
            "new_version",
            "m.fully_read",
            "m.read",
            "presence",
            "tags",
            "order",
          ),
          scalar,
          { maxKeys: 4 },
        )
        .map(
          (d) =>
            `{${Object.entries(d)
              .map(([k, v]) => `"${k}":${v}`)
              .join(",")}}`,
        ),
      fc.constantFrom('{"a":1,"a":2}', "", "nope", "[1]", '"x"', "{", '{"\\ud800":1}', "\uFEFF{}"),
    );
    const query = fc.dictionary(
      fc.constantFrom("since", "limit", "from", "to", "dir", "filter", "timeout", "version", "ts", "user_id"),
      fc.constantFrom(
        "-1",
        "NaN",
        "1e400",
        "99999999999999999999",
        "0",
        "1.5",
        "",
        "s1_1_1",
        "t-1",
        "{",
        "b",
      ),
      { maxKeys: 3 },
    );
    let requests = 0;
    for (const [method, pattern] of all) {
      await fc.assert(
        fc.asyncProperty(fc.array(id, { minLength: 6, maxLength: 6 }), body, query, async (ids, b, q) => {
          let i = 0;
          const path = pattern
            .split("/")
            .map((seg) => (seg.startsWith(":") ? (ids[i++] ?? "") : seg))
            .join("/");
          const qs = new URLSearchParams(q).toString();
          requests++;
          const res = await fetch(`${s.baseUrl}${path}${qs ? `?${qs}` : ""}`, {
            method,
            headers: { Authorization: `Bearer ${f.accessToken}`, "Content-Type": "application/json" },
            ...(method === "GET" ? {} : { body: b }),
          });
          const text = await res.text();
          const what = `${method} ${path}?${qs} ${b.slice(0, 80)} → ${res.status} ${text.slice(0, 200)}`;
          assert.ok(res.status < 500 && res.status >= 200, what);
          if (res.status >= 400 && res.status !== 401) {
            assert.match((JSON.parse(text) as { errcode?: string }).errcode ?? "", /^M_[A-Z_]+$/, what);
          }
        }),
        { numRuns: 6, seed: 20261207 },
      );
    }
    assert.ok(requests >= all.length * 6);
    await stillWorks();
    // A whole flow on fresh state: register, create, invite, join, send, read.
    const v = await s.register();
    const room = (await s.api("POST", "/createRoom", { token: v.accessToken, body: { invite: [u.userId] } }))
      .json.room_id as string;
    assert.equal((await s.api("POST", `/join/${enc(room)}`, { token: u.accessToken, body: {} })).status, 200);
    const sent = await s.api("PUT", `/rooms/${enc(room)}/send/m.room.message/hi`, {
      token: v.accessToken,
      body: { msgtype: "m.text", body: "hi" },
    });
    const read = await s.api("GET", `/rooms/${enc(room)}/event/${enc(sent.json.event_id)}`, {
      token: u.accessToken,
    });
    assert.equal(read.json.content.body, "hi");
  });
});
