import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_IDENTITY_PROVIDERS, MAX_LOGIN_FLOW_STRING_LENGTH, MAX_LOGIN_FLOWS } from "../../wire/index.ts";
import { MatrixClient } from "../client.ts";
import { ClientError, MalformedResponseError, MatrixError } from "../errors.ts";

/** A fake homeserver answering `GET /login` with `flows` (or `status` and `body`), recording requests. */
function fakeServer(answer: { status?: number; body: unknown }) {
  const requests: { url: string; method: string; authorization: string | null }[] = [];
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    requests.push({
      url,
      method: init.method ?? "GET",
      authorization: new Headers(init.headers).get("authorization"),
    });
    if (new URL(url).pathname !== "/base/_matrix/client/v3/login") {
      return new Response(JSON.stringify({ errcode: "M_UNRECOGNIZED" }), { status: 404 });
    }
    return new Response(JSON.stringify(answer.body), { status: answer.status ?? 200 });
  };
  return { fetch, requests };
}

const client = (fetch: typeof globalThis.fetch | ((u: string, i: RequestInit) => Promise<Response>)) =>
  new MatrixClient({ homeserverUrl: "https://hs.example/base/", fetch: fetch as typeof globalThis.fetch });

describe("getLoginFlows", () => {
  it("gives the flows typed: SSO identity providers, the get_login_token flag", async () => {
    const srv = fakeServer({
      body: {
        flows: [
          { type: "m.login.password" },
          {
            type: "m.login.sso",
            identity_providers: [
              { id: "oidc-github", name: "GitHub", brand: "github", extra: 1 },
              { id: "oidc-gitlab", name: "GitLab", icon: "mxc://hs.example/abc" },
            ],
          },
          { type: "m.login.token", get_login_token: true },
          { type: "org.example.custom", identity_providers: [{ id: "x", name: "ignored" }] },
        ],
      },
    });
    const flows = await client(srv.fetch).getLoginFlows();
    assert.deepEqual(flows, [
      { type: "m.login.password", identityProviders: [], getLoginToken: false },
      {
        type: "m.login.sso",
        identityProviders: [
          { id: "oidc-github", name: "GitHub", brand: "github" },
          { id: "oidc-gitlab", name: "GitLab", icon: "mxc://hs.example/abc" },
        ],
        getLoginToken: false,
      },
      { type: "m.login.token", identityProviders: [], getLoginToken: true },
      { type: "org.example.custom", identityProviders: [], getLoginToken: false },
    ]);
    assert.equal(srv.requests.length, 1);
    assert.equal(srv.requests[0]?.method, "GET");
    assert.equal(srv.requests[0]?.url, "https://hs.example/base/_matrix/client/v3/login");
    assert.equal(srv.requests[0]?.authorization, null, "no session needed, no token sent");
  });

  const hostile: [string, unknown][] = [
    ["no flows", {}],
    ["flows not a list", { flows: { type: "m.login.password" } }],
  ];
  for (const [what, body] of hostile) {
    it(`refuses an answer with ${what} (MalformedResponseError)`, async () => {
      const srv = fakeServer({ body });
      await assert.rejects(client(srv.fetch).getLoginFlows(), MalformedResponseError);
    });
  }

  const password = { type: "m.login.password" };
  const passwordFlow = { type: "m.login.password", identityProviders: [], getLoginToken: false };
  const badFlows: [string, unknown][] = [
    ["a flow without a type", {}],
    ["an empty type", { type: "" }],
    ["a type past the bound", { type: "t".repeat(MAX_LOGIN_FLOW_STRING_LENGTH + 1) }],
    ["a lone surrogate in a type", { type: "m.login.\ud800" }],
    ["identity providers not a list", { type: "m.login.sso", identity_providers: { id: "a", name: "A" } }],
  ];
  for (const [what, flow] of badFlows) {
    it(`leaves out a flow with ${what}, keeping the others`, async () => {
      const srv = fakeServer({ body: { flows: [flow, password] } });
      assert.deepEqual(await client(srv.fetch).getLoginFlows(), [passwordFlow]);
    });
  }

  it("takes the first MAX_LOGIN_FLOWS well-formed flows of a longer list", async () => {
    const flows = [
      { type: "" },
      ...Array.from({ length: MAX_LOGIN_FLOWS + 5 }, (_, i) => ({ type: `t${i}` })),
    ];
    const got = await client(fakeServer({ body: { flows } }).fetch).getLoginFlows();
    assert.deepEqual(
      got.map((f) => f.type),
      Array.from({ length: MAX_LOGIN_FLOWS }, (_, i) => `t${i}`),
    );
  });

  it("takes the first MAX_IDENTITY_PROVIDERS well-formed providers; a bad one is left out", async () => {
    const providers = Array.from({ length: MAX_IDENTITY_PROVIDERS + 5 }, (_, i) => ({
      id: `idp${i}`,
      name: `IdP ${i}`,
    }));
    const bad = [
      { id: "a" },
      { id: "\udc00", name: "n" },
      { id: "b", name: "x".repeat(MAX_LOGIN_FLOW_STRING_LENGTH + 1) },
    ];
    const srv = fakeServer({
      body: { flows: [{ type: "m.login.sso", identity_providers: [...bad, ...providers] }, password] },
    });
    const [sso, pw] = await client(srv.fetch).getLoginFlows();
    assert.deepEqual(
      sso?.identityProviders.map((p) => p.id),
      providers.slice(0, MAX_IDENTITY_PROVIDERS).map((p) => p.id),
    );
    assert.deepEqual(pw, passwordFlow);
  });

  it("reads a get_login_token that is not a boolean as false", async () => {
    const srv = fakeServer({ body: { flows: [{ type: "m.login.token", get_login_token: "yes" }] } });
    assert.deepEqual(await client(srv.fetch).getLoginFlows(), [
      { type: "m.login.token", identityProviders: [], getLoginToken: false },
    ]);
  });

  it("passes on the 404 of a server that only takes OAuth 2.0 login", async () => {
    const srv = fakeServer({
      status: 404,
      body: { errcode: "M_UNRECOGNIZED", error: "OAuth 2.0 is in use" },
    });
    await assert.rejects(
      client(srv.fetch).getLoginFlows(),
      (e) => e instanceof MatrixError && e.errcode === "M_UNRECOGNIZED" && e.httpStatus === 404,
    );
  });
});

describe("ssoRedirectUrl", () => {
  const c = client(fakeServer({ body: { flows: [] } }).fetch);

  it("builds the redirect URL on the homeserver's base URL, the redirect URL query-encoded", () => {
    const url = c.ssoRedirectUrl("https://app.example/cb?next=/rooms&x=a b#frag");
    assert.equal(
      url,
      "https://hs.example/base/_matrix/client/v3/login/sso/redirect?redirectUrl=" +
        "https%3A%2F%2Fapp.example%2Fcb%3Fnext%3D%2Frooms%26x%3Da%20b%23frag",
    );
    assert.equal(
      new URL(url).searchParams.get("redirectUrl"),
      "https://app.example/cb?next=/rooms&x=a b#frag",
    );
  });

  it("path-encodes the identity provider ID", () => {
    const url = c.ssoRedirectUrl("myapp://sso", "oidc/evil?x=1#y");
    assert.equal(
      url,
      "https://hs.example/base/_matrix/client/v3/login/sso/redirect/oidc%2Fevil%3Fx%3D1%23y?redirectUrl=myapp%3A%2F%2Fsso",
    );
    assert.equal(new URL(url).pathname, "/base/_matrix/client/v3/login/sso/redirect/oidc%2Fevil%3Fx%3D1%23y");
  });

  it("refuses a relative redirect URL, an empty or dot-segment or ill-formed IdP ID (INVALID_ARGUMENT)", () => {
    const invalid = (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT";
    assert.throws(() => c.ssoRedirectUrl("/cb"), invalid);
    assert.throws(() => c.ssoRedirectUrl("https://app.example/\ud800"), invalid);
    assert.throws(() => c.ssoRedirectUrl("https://app.example/cb", ""), invalid);
    assert.throws(() => c.ssoRedirectUrl("https://app.example/cb", ".."), invalid);
    assert.throws(() => c.ssoRedirectUrl("https://app.example/cb", "a\udc00"), invalid);
  });

  it("the token the redirect brings back logs in with m.login.token", async () => {
    const bodies: unknown[] = [];
    const fetch = async (_url: string, init: RequestInit) => {
      bodies.push(JSON.parse(String(init.body)));
      return new Response(
        JSON.stringify({ user_id: "@a:hs.example", access_token: "tok", device_id: "DEV" }),
      );
    };
    const back = new URL("https://app.example/cb?loginToken=abc123");
    const info = await client(fetch).loginWithToken(back.searchParams.get("loginToken") ?? "");
    assert.equal(info.userId, "@a:hs.example");
    assert.equal(bodies.length, 1);
    assert.deepEqual(bodies[0], { type: "m.login.token", token: "abc123", refresh_token: true });
  });
});
