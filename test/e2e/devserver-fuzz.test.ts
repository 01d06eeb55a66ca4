// Sweeps every route with random path parameters, query strings and bodies: whatever arrives, the
// server answers with a spec-shaped error or success, never a 500 and never a non-JSON error.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import fc from "fast-check";
import { Homeserver } from "../../src/devserver/homeserver.ts";
import { buildRouter } from "../../src/devserver/routes/index.ts";
import { Uia } from "../../src/devserver/uia.ts";
import { scaledMs } from "../support/budget.ts";
import { startTestDevServer, type TestDevServer, type TestUser } from "../support/devserver.ts";

let s: TestDevServer;
let u: TestUser;
let roomId: string;
let eventId: string;

before(async () => {
  s = await startTestDevServer();
  u = await s.register("fuzzer");
  roomId = (await s.api("POST", "/createRoom", { token: u.accessToken, body: {} })).json.room_id;
  eventId = (
    await s.api("PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/f0`, {
      token: u.accessToken,
      body: { body: "x" },
    })
  ).json.event_id;
});
after(() => s.close());

function routes(): [string, string][] {
  const hs = new Homeserver({ serverName: "localhost", dbPath: ":memory:" });
  try {
    return buildRouter({ hs, uia: new Uia(hs), baseUrl: () => "" }).list();
  } finally {
    hs.close();
  }
}

// Routes that end the fuzzer's own session would stop the sweep, not test the server.
const SKIP = new Set(["/logout", "/logout/all"]);

it("no route answers 500 or a non-JSON error, whatever the input", {
  timeout: scaledMs(60_000),
}, async () => {
  const all = routes().filter(([, p]) => !SKIP.has(p.replace(/^\/_matrix\/client\/(v3|r0)/, "")));
  const param = fc.oneof(
    fc.constant(roomId),
    fc.constant(eventId),
    fc.constant(u.userId),
    fc.constant(u.deviceId),
    fc.constant("localhost"),
    fc.string({ maxLength: 20 }),
    fc.constantFrom("%", "%ZZ", "..", "\u0000", "%F0%9F%98%80"),
  );
  const body = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 40 }),
    fc.constant(""),
    fc.constant('{"auth":{"type":"m.login.password","session":"x"}}'),
  );
  const query = fc.dictionary(
    fc.constantFrom(
      "since",
      "limit",
      "from",
      "to",
      "dir",
      "filter",
      "timeout",
      "version",
      "width",
      "height",
      "kind",
    ),
    fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String), fc.constant("s1_1_1")),
    { maxKeys: 3 },
  );
  for (const [method, pattern] of all) {
    await fc.assert(
      fc.asyncProperty(fc.array(param, { minLength: 6, maxLength: 6 }), body, query, async (params, b, q) => {
        let i = 0;
        const path = pattern
          .split("/")
          .map((seg) => (seg.startsWith(":") ? encodeURIComponent(params[i++] ?? "") : seg))
          .join("/");
        const qs = new URLSearchParams(q).toString();
        const res = await fetch(`${s.baseUrl}${path}${qs ? `?${qs}` : ""}`, {
          method,
          headers: { Authorization: `Bearer ${u.accessToken}`, "Content-Type": "application/json" },
          ...(method === "GET" ? {} : { body: b }),
        });
        const text = await res.text();
        assert.ok(res.status < 500, `${method} ${path}?${qs} → ${res.status} ${text.slice(0, 200)}`);
        if (res.status >= 400) {
          const json = JSON.parse(text) as { errcode?: string; flows?: unknown };
          assert.ok(json.errcode !== undefined || json.flows !== undefined, `${method} ${path}: ${text}`);
        }
      }),
      { seed: 20_261_207, numRuns: 12 },
    );
  }
});

it("a request target no URL parser takes answers 400 M_UNRECOGNIZED, not 500", async () => {
  const { request } = await import("node:http");
  const url = new URL(s.baseUrl);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: "//[", method: "GET" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
  assert.equal(answer.status, 400);
  assert.equal((JSON.parse(answer.body) as { errcode: string }).errcode, "M_UNRECOGNIZED");
});
