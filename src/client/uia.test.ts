// User-Interactive Auth against a scripted server: the password stage, the callback, and the
// `m.oauth` approval stage (spec v1.17; MSC4312's unstable `org.matrix.cross_signing_reset`).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsonObjectSchema } from "../wire/index.ts";
import { ClientError, MalformedResponseError, MatrixError } from "./errors.ts";
import { HttpClient, path } from "./http.ts";
import {
  MAX_UIA_OAUTH_URL_LENGTH,
  MAX_UIA_ROUNDS,
  type UiaAuth,
  type UiaOAuthStage,
  withUia,
} from "./uia.ts";

const APPROVE_URL = "https://account.example/account/?action=org.matrix.cross_signing_reset";

/** The challenge a server delegating to OAuth 2.0 (Synapse with MAS) answers a key replacement with. */
const oauthChallenge = (
  url: unknown = APPROVE_URL,
  stages = ["m.oauth", "org.matrix.cross_signing_reset"],
) => ({
  session: "uia-session",
  flows: stages.map((s) => ({ stages: [s] })),
  params: Object.fromEntries(stages.map((s) => [s, { url }])),
});

/**
 * A server scripted with its answers in order (the last one repeated), recording each request's
 * `auth`; every request is `POST /keys/device_signing/upload`.
 */
function scripted(answers: { status: number; body: unknown }[]) {
  const auths: unknown[] = [];
  const http = new HttpClient({
    baseUrl: "https://hs.example",
    accessToken: () => "tok",
    fetch: async (_url, init) => {
      auths.push((JSON.parse(String(init?.body)) as { auth?: unknown }).auth);
      const a = answers[Math.min(auths.length - 1, answers.length - 1)];
      return new Response(JSON.stringify(a?.body), { status: a?.status ?? 500 });
    },
  });
  const upload = (auth: UiaAuth | undefined) =>
    withUia("@alice:hs.example", auth, "upload cross-signing keys", (authDict) =>
      http.request({
        method: "POST",
        path: path`/_matrix/client/v3/keys/device_signing/upload`,
        body: { master_key: {}, ...(authDict !== undefined ? { auth: authDict } : {}) },
        schema: jsonObjectSchema,
      }),
    );
  return { auths, upload };
}

describe("user-interactive auth: m.oauth", () => {
  it("hands the approval URL to the app, then retries with only the session", async () => {
    const srv = scripted([
      { status: 401, body: oauthChallenge() },
      { status: 200, body: {} },
    ]);
    const shown: UiaOAuthStage[] = [];
    await srv.upload({ oauth: async (stage) => void shown.push(stage) });
    assert.deepEqual(shown, [{ type: "m.oauth", url: APPROVE_URL }]);
    assert.deepEqual(srv.auths, [undefined, { session: "uia-session" }]);
  });

  it("takes the unstable stage of servers before spec v1.17", async () => {
    const srv = scripted([
      { status: 401, body: oauthChallenge(APPROVE_URL, ["org.matrix.cross_signing_reset"]) },
      { status: 200, body: {} },
    ]);
    const shown: UiaOAuthStage[] = [];
    await srv.upload({ password: "pw", oauth: async (stage) => void shown.push(stage) });
    assert.deepEqual(shown, [{ type: "org.matrix.cross_signing_reset", url: APPROVE_URL }]);
    assert.deepEqual(srv.auths, [undefined, { session: "uia-session" }]);
  });

  it("prefers the password when a flow offers it, as before", async () => {
    const srv = scripted([
      {
        status: 401,
        body: { ...oauthChallenge(), flows: [{ stages: ["m.oauth"] }, { stages: ["m.login.password"] }] },
      },
      { status: 200, body: {} },
    ]);
    await srv.upload({ password: "pw", oauth: async () => assert.fail("not asked") });
    assert.deepEqual(srv.auths[1], {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "@alice:hs.example" },
      password: "pw",
      session: "uia-session",
    });
  });

  it("asks again while the server still waits for the approval (any errcode), up to MAX_UIA_ROUNDS", async () => {
    const notYet = { status: 401, body: { ...oauthChallenge(), errcode: "M_UNRECOGNIZED" } };
    const srv = scripted([notYet, notYet, { status: 200, body: {} }]);
    let asked = 0;
    await srv.upload({ oauth: async () => void asked++ });
    assert.equal(asked, 2);
    assert.deepEqual(srv.auths, [undefined, { session: "uia-session" }, { session: "uia-session" }]);

    const never = scripted([notYet]);
    await assert.rejects(
      never.upload({ oauth: async () => undefined }),
      (e) => e instanceof ClientError && e.code === "UNSUPPORTED_AUTH",
    );
    assert.equal(never.auths.length, MAX_UIA_ROUNDS + 1);
  });

  it("an app that gives up rejects, and nothing is sent again", async () => {
    const srv = scripted([{ status: 401, body: oauthChallenge() }]);
    const refused = new Error("the user closed the dialog");
    await assert.rejects(
      srv.upload({
        oauth: async () => {
          throw refused;
        },
      }),
      (e) => e === refused,
    );
    assert.equal(srv.auths.length, 1);
  });

  const malformed: [string, unknown][] = [
    ["a javascript: URL", "javascript:alert(1)"],
    ["a plain http: URL on another host", "http://account.example/approve"],
    ["a plain http: URL on a name that starts like a loopback one", "http://localhost.evil.example/"],
    ["a plain http: URL on a name that starts like a loopback address", "http://127.0.0.1.evil.example/"],
    ["a plain http: URL on a private address", "http://10.0.0.1/approve"],
    ["a relative URL", "/account/"],
    ["user info in the URL", "https://account.example@evil.example/"],
    ["not a string", 42],
    ["a lone surrogate", "https://account.example/\ud800"],
    [
      "a URL past MAX_UIA_OAUTH_URL_LENGTH",
      `https://account.example/${"a".repeat(MAX_UIA_OAUTH_URL_LENGTH)}`,
    ],
  ];
  for (const [what, url] of malformed) {
    it(`refuses ${what} with MalformedResponseError, the app never asked`, async () => {
      const srv = scripted([{ status: 401, body: oauthChallenge(url) }]);
      await assert.rejects(
        srv.upload({ oauth: async () => assert.fail("not asked") }),
        (e) => e instanceof MalformedResponseError && e.httpStatus === 401,
      );
      assert.equal(srv.auths.length, 1);
    });
  }

  for (const url of [
    "http://localhost:8080/approve",
    "http://127.0.0.1/approve",
    "http://127.9.8.7/",
    "http://[::1]:3000/",
  ]) {
    it(`takes a plain http: URL on a loopback host (${url})`, async () => {
      const srv = scripted([
        { status: 401, body: oauthChallenge(url) },
        { status: 200, body: {} },
      ]);
      const shown: UiaOAuthStage[] = [];
      await srv.upload({ oauth: async (stage) => void shown.push(stage) });
      assert.deepEqual(shown, [{ type: "m.oauth", url }]);
    });
  }

  it("says why a plain http: URL was not taken", async () => {
    const srv = scripted([{ status: 401, body: oauthChallenge("http://account.example/approve") }]);
    await assert.rejects(
      srv.upload({ oauth: async () => assert.fail("not asked") }),
      (e) => e instanceof MalformedResponseError && /loopback/.test(e.message),
    );
  });

  it("a password alone still fails typed, saying what the server asks for", async () => {
    const srv = scripted([{ status: 401, body: oauthChallenge() }]);
    await assert.rejects(
      srv.upload({ password: "pw" }),
      (e) => e instanceof ClientError && e.code === "UNSUPPORTED_AUTH" && /m\.oauth/.test(e.message),
    );
  });

  it("a callback gets the validated stage as its second argument; its {} completes the stage", async () => {
    const srv = scripted([
      { status: 401, body: oauthChallenge() },
      { status: 200, body: {} },
    ]);
    const seen: (UiaOAuthStage | undefined)[] = [];
    await srv.upload(async (challenge, oauth) => {
      assert.equal(challenge.session, "uia-session");
      seen.push(oauth);
      return {};
    });
    assert.deepEqual(seen, [{ type: "m.oauth", url: APPROVE_URL }]);
    assert.deepEqual(srv.auths[1], { session: "uia-session" });
  });

  it("a failed password attempt is still reported with the server's error", async () => {
    const srv = scripted([
      { status: 401, body: { session: "s", flows: [{ stages: ["m.login.password"] }] } },
      {
        status: 401,
        body: { session: "s", flows: [{ stages: ["m.login.password"] }], errcode: "M_FORBIDDEN" },
      },
    ]);
    await assert.rejects(
      srv.upload({ password: "wrong" }),
      (e) => e instanceof MatrixError && e.errcode === "M_FORBIDDEN",
    );
    assert.equal(srv.auths.length, 2);
  });
});
