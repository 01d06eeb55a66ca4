import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as z from "../wire/zod.ts";
import { ClientError, MalformedResponseError, MatrixError, NetworkError } from "./errors.ts";
import { HttpClient, path } from "./http.ts";

interface Seen {
  url: string;
  init: RequestInit;
}

function client(
  respond: (url: string, init: RequestInit) => Response | Promise<Response>,
  seen: Seen[] = [],
) {
  return new HttpClient({
    baseUrl: "https://hs.example/",
    accessToken: () => "secret-token",
    fetch: async (url, init) => {
      seen.push({ url, init });
      return respond(url, init);
    },
  });
}
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const ok = z.object({ event_id: z.string() });

describe("path", () => {
  it("percent-encodes each interpolated segment and keeps a template without IDs", () => {
    const p = path`/_matrix/client/v3/rooms/${"!a/b?c:x.org"}/send/${"m.room.message"}/${"t#1"}`;
    assert.equal(p.encoded, "/_matrix/client/v3/rooms/!a%2Fb%3Fc%3Ax.org/send/m.room.message/t%231");
    assert.equal(p.template, "/_matrix/client/v3/rooms/{}/send/{}/{}");
  });

  it("refuses a part that is . or .., which URL parsing would take as a dot segment", () => {
    // Percent-encoding does not help: `%2e` and `%2E` are dot segments too.
    assert.equal(
      new URL("https://hs/rooms/!r/state/m.room.topic/.").pathname,
      "/rooms/!r/state/m.room.topic/",
    );
    assert.equal(new URL("https://hs/rooms/!r/state/%2e%2e/x").pathname, "/rooms/!r/x");
    for (const part of [".", ".."]) {
      assert.throws(
        () => path`/_matrix/client/v3/rooms/${"!r:hs"}/state/${"m.room.topic"}/${part}`,
        (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT",
      );
    }
    // Dots within a part are fine.
    assert.equal(path`/x/${"..."}/${".a"}/${"a.."}`.encoded, "/x/.../.a/a..");
  });
});

describe("HttpClient", () => {
  it("sends the token in the Authorization header only, and the query string encoded", async () => {
    const seen: Seen[] = [];
    const http = client(() => json(200, { event_id: "$e" }), seen);
    const res = await http.request({
      method: "PUT",
      path: path`/x/${"a b"}`,
      query: { since: "s 1&2", skip: undefined, n: 5 },
      body: { a: 1 },
      schema: ok,
    });
    assert.equal(res.event_id, "$e");
    const first = seen[0]!;
    assert.equal(first.url, "https://hs.example/x/a%20b?since=s+1%262&n=5");
    assert.ok(!first.url.includes("secret-token"));
    const headers = first.init.headers as Record<string, string>;
    assert.equal(headers.Authorization, "Bearer secret-token");
    assert.equal(headers["Content-Type"], "application/json");
    assert.equal(first.init.body, '{"a":1}');
  });

  it("omits the token when auth is false", async () => {
    const seen: Seen[] = [];
    await client(() => json(200, { event_id: "$e" }), seen).request({
      method: "GET",
      path: path`/v`,
      auth: false,
      schema: ok,
    });
    assert.equal((seen[0]!.init.headers as Record<string, string>).Authorization, undefined);
  });

  it("turns error bodies into MatrixError with errcode, status and retry_after_ms", async () => {
    const http = client(() =>
      json(429, { errcode: "M_LIMIT_EXCEEDED", error: "slow down", retry_after_ms: 1234 }),
    );
    const err = await http.request({ method: "GET", path: path`/x`, schema: ok }).catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError);
    assert.equal(err.errcode, "M_LIMIT_EXCEEDED");
    assert.equal(err.httpStatus, 429);
    assert.equal(err.retryAfterMs, 1234);
    assert.equal(err.isRateLimited, true);
    assert.ok(!String(err.message).includes("secret-token"));
  });

  it("keeps each error field that is well-formed when another one is not", async () => {
    // One field of the wrong type used to discard them all: errcode became M_UNKNOWN.
    const cases: [Record<string, unknown>, string, number | undefined][] = [
      [{ errcode: "M_UNKNOWN_TOKEN", error: null, soft_logout: false }, "M_UNKNOWN_TOKEN", undefined],
      [{ errcode: "M_UNKNOWN_TOKEN", soft_logout: "yes" }, "M_UNKNOWN_TOKEN", undefined],
      [{ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1.5 }, "M_LIMIT_EXCEEDED", undefined],
      [{ errcode: "M_LIMIT_EXCEEDED", retry_after_ms: -1, error: 7 }, "M_LIMIT_EXCEEDED", undefined],
      [{ errcode: 5, retry_after_ms: 250 }, "M_UNKNOWN", 250],
      [{ errcode: ["M_FORBIDDEN"], error: "no" }, "M_UNKNOWN", undefined],
    ];
    for (const [body, errcode, retryAfterMs] of cases) {
      const http = client(() => json(401, body));
      const err = await http.request({ method: "GET", path: path`/x`, schema: ok }).catch((e: unknown) => e);
      assert.ok(err instanceof MatrixError);
      assert.equal(err.errcode, errcode, JSON.stringify(body));
      assert.equal(err.retryAfterMs, retryAfterMs, JSON.stringify(body));
      assert.deepEqual(err.body, body);
    }
  });

  it("takes Retry-After (seconds) when the body has no retry_after_ms", async () => {
    const http = client(() => json(429, { errcode: "M_LIMIT_EXCEEDED" }, { "retry-after": "3" }));
    const err = await http.request({ method: "GET", path: path`/x`, schema: ok }).catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError);
    assert.equal(err.retryAfterMs, 3000);
  });

  it("maps a non-JSON error page to MatrixError M_UNKNOWN with the status", async () => {
    const http = client(() => new Response("<html>bad gateway</html>", { status: 502 }));
    const err = await http.request({ method: "GET", path: path`/x`, schema: ok }).catch((e: unknown) => e);
    assert.ok(err instanceof MatrixError);
    assert.equal(err.errcode, "M_UNKNOWN");
    assert.equal(err.httpStatus, 502);
  });

  it("maps fetch failures to NetworkError", async () => {
    const http = client(() => {
      throw new TypeError("fetch failed");
    });
    const err = await http.request({ method: "GET", path: path`/x`, schema: ok }).catch((e: unknown) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.code, "NETWORK");
  });

  it("reports a timeout as NetworkError TIMEOUT", async () => {
    const http = client(
      (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init.signal?.addEventListener("abort", () => reject(new Error("aborted")));
        }),
    );
    const err = await http
      .request({ method: "GET", path: path`/x`, schema: ok, timeoutMs: 5 })
      .catch((e: unknown) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.code, "TIMEOUT");
  });

  it("reports a caller abort as NetworkError ABORTED", async () => {
    const ctrl = new AbortController();
    const http = client(
      (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init.signal?.addEventListener("abort", () => reject(new Error("aborted")));
          ctrl.abort();
        }),
    );
    const err = await http
      .request({ method: "GET", path: path`/x`, schema: ok, signal: ctrl.signal })
      .catch((e: unknown) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.code, "ABORTED");
  });

  it("the client's signal ends its requests in flight (with or without their own signal) and refuses later ones", async () => {
    const gone = new AbortController();
    const signals: (AbortSignal | null | undefined)[] = [];
    let inFlight: () => void = () => {};
    const bothAsked = new Promise<void>((resolve) => {
      inFlight = resolve;
    });
    const http = new HttpClient({
      baseUrl: "https://hs.example",
      signal: gone.signal,
      fetch: (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init.signal?.addEventListener("abort", () => reject(new Error("aborted")));
          if (signals.push(init.signal) === 2) inFlight();
        }),
    });
    const own = new AbortController();
    const aborted = (e: unknown) => e instanceof NetworkError && e.code === "ABORTED";
    const plain = http.request({ method: "GET", path: path`/x`, schema: ok });
    const withOwn = http.request({ method: "GET", path: path`/y`, schema: ok, signal: own.signal });
    await bothAsked;
    gone.abort();
    // At once (checked before waiting for them, which would never end if they were not ended).
    assert.deepEqual(
      signals.map((signal) => signal?.aborted),
      [true, true],
    );
    await assert.rejects(plain, aborted);
    await assert.rejects(withOwn, aborted);
    await assert.rejects(http.request({ method: "GET", path: path`/z`, schema: ok }), aborted);
    // A media download, with its own signal or not.
    await assert.rejects(http.requestRaw({ method: "GET", path: path`/m` }), aborted);
    const later = new AbortController();
    await assert.rejects(http.requestRaw({ method: "GET", path: path`/m`, signal: later.signal }), aborted);
    assert.equal(signals.length, 2, "a request after the abort went out");
  });

  it("rejects bodies that fail the schema or are not JSON with MalformedResponseError", async () => {
    const bad = await client(() => json(200, { event_id: 7 }))
      .request({ method: "GET", path: path`/rooms/${"!secret:x"}`, schema: ok })
      .catch((e: unknown) => e);
    assert.ok(bad instanceof MalformedResponseError);
    assert.equal(bad.code, "MALFORMED_RESPONSE");
    assert.equal(bad.endpoint, "GET /rooms/{}");
    assert.match(bad.issues[0]!, /event_id/);
    const notJson = await client(() => new Response("{", { status: 200 }))
      .request({ method: "GET", path: path`/x`, schema: ok })
      .catch((e: unknown) => e);
    assert.ok(notJson instanceof MalformedResponseError);
  });

  it("bounds the body it reads, by default or per request", async () => {
    const padded = () => new Response(`{"event_id":"$1"${" ".repeat(100)}}`, { status: 200 });
    const small = await client(padded)
      .request({ method: "GET", path: path`/x`, schema: ok, maxResponseBytes: 64 })
      .catch((e: unknown) => e);
    assert.ok(small instanceof MalformedResponseError);
    assert.match(small.issues[0]!, /larger than 64 bytes/);
    const enough = await client(padded).request({
      method: "GET",
      path: path`/x`,
      schema: ok,
      maxResponseBytes: 200,
    });
    assert.equal(enough.event_id, "$1");
  });

  it("refuses non-http base URLs", () => {
    assert.throws(() => new HttpClient({ baseUrl: "file:///etc/passwd" }), TypeError);
  });

  it("asserts an appservice user's identity on authenticated requests only", async () => {
    const seen: Seen[] = [];
    const http = new HttpClient({
      baseUrl: "https://hs.example",
      accessToken: () => "as-token",
      assertedIdentity: () => ({ userId: "@br_a:hs.example", deviceId: "DEV" }),
      fetch: async (url, init) => {
        seen.push({ url, init });
        return json(200, { event_id: "$e" });
      },
    });
    await http.request({ method: "GET", path: path`/x`, query: { a: "1" }, schema: ok });
    await http.request({ method: "GET", path: path`/y`, auth: false, schema: ok });
    const first = new URL(seen[0]!.url);
    assert.equal(first.searchParams.get("a"), "1");
    assert.equal(first.searchParams.get("user_id"), "@br_a:hs.example");
    assert.equal(first.searchParams.get("device_id"), "DEV");
    assert.equal(first.searchParams.get("org.matrix.msc3202.device_id"), "DEV");
    assert.equal(new URL(seen[1]!.url).search, "");
  });
});
