// Property tests of the client against a hostile homeserver, one per family of endpoints (`/sync`
// has its own, in sync/): whatever the answer (ill-formed Unicode, `__proto__` keys, numbers past
// a double, wrong types), a call succeeds with data the client can use, or fails with a typed error
// leaving the session store as it was; a well-formed answer afterwards works.
// - session: `/login` and `/register` answers;
// - errors: any status and error body;
// - room reads: `/messages`, `/state`, `/event` and `/relations` answers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MAX_RATE_LIMITED_RETRIES, MAX_RETRY_AFTER_MS } from "./backoff.ts";
import { MatrixClient } from "./client.ts";
import { MemoryClientStore } from "./client-store/index.ts";
import { ClientError, MalformedResponseError, MatrixError, NetworkError } from "./errors.ts";
import type { FetchLike } from "./http.ts";

const SESSION = { homeserverUrl: "https://hs", userId: "@me:hs", deviceId: "D", accessToken: "t" };

/** JSON text. Strings through `JSON.stringify`: a lone surrogate arrives as JSON's escape. */
type Raw = string;
const text = (s: string): Raw => JSON.stringify(s);
const obj = (entries: readonly (readonly [string, Raw])[]): Raw =>
  `{${entries.map(([k, v]) => `${text(k)}:${v}`).join(",")}}`;

const odd = fc.constantFrom(
  "",
  "\ud800",
  "a\udc00b",
  "a\nb",
  "a b",
  "\u4e2d",
  "\u0000",
  "__proto__",
  "x".repeat(300),
  "x".repeat(5000),
);
/** A string, often one of the plain ones, else something odd. */
const str = (...plain: string[]): fc.Arbitrary<Raw> =>
  fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...plain) }, odd, fc.string({ maxLength: 6 })).map(text);
const num: fc.Arbitrary<Raw> = fc.constantFrom("0", "-0", "-1", "1.5", "1e400", "9007199254740993", "1234");
const scalar: fc.Arbitrary<Raw> = fc.oneof(str("x"), num, fc.constantFrom("null", "true", "[]", "{}"));
const value: fc.Arbitrary<Raw> = fc.letrec<{ v: Raw }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("v"), { maxLength: 3 }).map((a) => `[${a.join(",")}]`),
    fc
      .array(fc.tuple(fc.oneof(str("k"), fc.constant(text("__proto__"))), tie("v")), { maxLength: 3 })
      .map((es) => `{${es.map(([k, v]) => `${k}:${v}`).join(",")}}`),
  ),
})).v;

/** An object with these fields, each usually `plain` and sometimes any value or missing. */
function fields(shape: Record<string, fc.Arbitrary<Raw>>): fc.Arbitrary<Raw> {
  const entries = Object.entries(shape).map(([k, v]) =>
    fc.oneof({ weight: 4, arbitrary: v }, value, fc.constant(undefined)).map((raw) => [k, raw] as const),
  );
  return fc
    .tuple(
      fc.tuple(...entries),
      fc.array(fc.tuple(fc.constantFrom("__proto__", "extra"), value), { maxLength: 1 }),
    )
    .map(([es, extra]) =>
      obj([...es.filter((e): e is readonly [string, Raw] => e[1] !== undefined), ...extra]),
    );
}

const typed = (e: unknown) =>
  e instanceof MalformedResponseError ||
  e instanceof MatrixError ||
  e instanceof ClientError ||
  e instanceof NetworkError;

/** Answers `/login` and `/register` with `answer()`; other endpoints as a fine server would. */
function server(answer: () => Raw, routes: Record<string, () => Response> = {}): FetchLike {
  return async (url, init) => {
    new Headers(init.headers); // as the platform's fetch does: throws on a value no header can carry
    const p = new URL(url).pathname;
    if (p.endsWith("/login") || p.endsWith("/register")) return new Response(answer());
    for (const [suffix, respond] of Object.entries(routes)) if (p.endsWith(suffix)) return respond();
    if (p.endsWith("/whoami")) return Response.json({ user_id: SESSION.userId });
    if (p.includes("/profile/")) return Response.json({ displayname: "me" });
    return Response.json({ errcode: "M_NOT_FOUND", error: "not here" }, { status: 404 });
  };
}

describe("hostile answers (fast-check)", () => {
  it("session: a login or registration works afterwards, or fails typed and saves nothing", async () => {
    const answer = fields({
      user_id: str("@me:hs", "@other:hs"),
      access_token: str("syt_abc", "tok"),
      device_id: str("D", "NEW"),
      expires_in_ms: num,
      refresh_token: str("rt_abc"),
    });
    await fc.assert(
      fc.asyncProperty(answer, fc.boolean(), async (body, register) => {
        const store = new MemoryClientStore();
        const client = new MatrixClient({ homeserverUrl: "https://hs", store, fetch: server(() => body) });
        const login = register
          ? () => client.register({ username: "me", password: "pw" })
          : () => client.login({ user: "me", password: "pw" });
        try {
          await login();
        } catch (e) {
          assert.ok(typed(e), String(e));
          assert.equal(await store.loadSession(), undefined);
          return;
        }
        // A session was made: every request with it goes out, and lands on its user's paths.
        const saved = await store.loadSession();
        assert.deepEqual([saved?.userId, saved?.deviceId], [client.userId, client.deviceId]);
        await client.whoami();
        assert.deepEqual(await client.getProfile(client.userId), { displayName: "me" });
        await client.setDisplayName("me").catch((e: unknown) => assert.ok(e instanceof MatrixError));
      }),
      { numRuns: 300, seed: 0x10a1 },
    );
  });

  it("errors: any status and body is a MatrixError with a string errcode and a usable wait", async () => {
    const body = fc.oneof(
      fields({ errcode: str("M_UNKNOWN_TOKEN", "M_LIMIT_EXCEEDED"), error: str("no"), retry_after_ms: num }),
      value,
      fc.constantFrom("", "<html>", "{", "null"),
    );
    const status = fc.constantFrom(400, 401, 403, 404, 429, 500, 502, 503, 599);
    const header = fc.option(fc.constantFrom("3", "-1", "1e3", "9999999999", "Wed, 21 Oct 2015"), {
      nil: undefined,
    });
    await fc.assert(
      fc.asyncProperty(body, status, header, async (raw, code, retryAfter) => {
        const store = new MemoryClientStore();
        await store.saveSession(SESSION);
        const headers: Record<string, string> = retryAfter === undefined ? {} : { "Retry-After": retryAfter };
        const waits: number[] = [];
        const client = new MatrixClient({
          homeserverUrl: "https://hs",
          store,
          fetch: async () => new Response(raw, { status: code, headers }),
          clock: { now: () => 0, random: () => 0.5, sleep: async (ms) => void waits.push(ms) },
        });
        await client.restore();
        // Not idempotent: a rate limit is retried (after a capped wait), anything else fails at once.
        const err = await client.setDisplayName("x").then(
          () => assert.fail("an error status was taken as success"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof MatrixError, String(err));
        assert.equal(typeof err.errcode, "string");
        assert.equal(err.httpStatus, code);
        const parsed = (() => {
          try {
            return JSON.parse(raw) as unknown;
          } catch {
            return undefined;
          }
        })();
        const sent = (parsed as { errcode?: unknown } | null)?.errcode;
        if (typeof sent === "string" && typeof parsed === "object" && !Array.isArray(parsed))
          assert.equal(err.errcode, sent);
        if (err.retryAfterMs !== undefined)
          assert.ok(Number.isSafeInteger(err.retryAfterMs) && err.retryAfterMs >= 0);
        JSON.stringify(err.body);
        // Rate limits are waited out within bounds, a few times at most.
        assert.ok(waits.length <= MAX_RATE_LIMITED_RETRIES + 4, `${waits.length} retries`);
        for (const ms of waits) assert.ok(ms >= 0 && ms <= MAX_RETRY_AFTER_MS, `waited ${ms} ms`);
      }),
      { numRuns: 200, seed: 0xe220 },
    );
  });

  it("room reads: /messages, /state, /event and /relations give events that survive serialising, or typed errors", async () => {
    const event = fields({
      event_id: str("$e"),
      type: str("m.room.message", "m.room.member"),
      sender: str("@a:hs"),
      state_key: str("", "@a:hs"),
      origin_server_ts: num,
      content: fc.oneof(fields({ body: str("hi"), membership: str("join") }), value),
      unsigned: fc.oneof(fields({ age: num, prev_content: value }), value),
    });
    const events = fc
      .array(fc.oneof({ weight: 4, arbitrary: event }, value), { maxLength: 4 })
      .map((es) => `[${es.join(",")}]`);
    const page = fields({ start: str("s"), end: str("e"), chunk: events, state: events });
    const relationsPage = fields({ chunk: events, next_batch: str("n") });
    await fc.assert(
      fc.asyncProperty(page, events, event, relationsPage, async (messages, state, one, relations) => {
        const store = new MemoryClientStore();
        await store.saveSession(SESSION);
        const answers: Record<string, Raw> = {
          "/messages": messages,
          "/state": state,
          "/event/$e": one,
          "/relations/$e/m.annotation": relations,
        };
        const client = new MatrixClient({
          homeserverUrl: "https://hs",
          store,
          fetch: async (url) => {
            const p = decodeURIComponent(new URL(url).pathname);
            const found = Object.entries(answers).find(([suffix]) => p.endsWith(suffix));
            return found
              ? new Response(found[1])
              : Response.json({ errcode: "M_NOT_FOUND" }, { status: 404 });
          },
        });
        await client.restore();
        for (const read of [
          () => client.messages("!r:hs"),
          () => client.fetchRoomState("!r:hs"),
          () => client.fetchEvent("!r:hs", "$e"),
          () => client.relations("!r:hs", "$e", { relType: "m.annotation" }),
        ]) {
          try {
            const out = await read();
            JSON.stringify(out);
            structuredClone(out);
          } catch (e) {
            assert.ok(typed(e), String(e));
          }
        }
        assert.deepEqual(await store.loadSession(), SESSION);
      }),
      { numRuns: 200, seed: 0x4ead },
    );
  });
});
