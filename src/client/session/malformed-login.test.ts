// A login's or registration's answer the client refuses (a user or device ID that is not one) still
// made a device on the server. Refused with MalformedResponseError as any malformed answer, but
// the device is logged out first with the answer's own token, so none is left that nobody holds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MatrixClient } from "../client.ts";
import { MemoryClientStore } from "../client-store/index.ts";
import { MalformedResponseError } from "../errors.ts";
import { silentLogger } from "../logger.ts";

/** A server whose login and registration answer `answer`; records what it is asked, with the token. */
function serverAnswering(answer: Record<string, unknown>) {
  const asked: { path: string; token: string | undefined }[] = [];
  const fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = new URL(String(url)).pathname.replace("/_matrix/client/v3", "");
    const auth = new Headers(init?.headers).get("authorization") ?? undefined;
    asked.push({ path, token: auth?.replace(/^Bearer /, "") });
    const json = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
    if (path === "/login" || path === "/register") return json(200, answer);
    if (path === "/logout") return json(200, {});
    return json(404, { errcode: "M_UNRECOGNIZED", error: "not here" });
  };
  return { fetch, asked };
}

const clientOf = (fetch: (url: string | URL | Request, init?: RequestInit) => Promise<Response>) =>
  new MatrixClient({
    homeserverUrl: "https://hs",
    store: new MemoryClientStore(),
    fetch,
    logger: silentLogger,
  });

describe("a login answer the client refuses", () => {
  for (const how of ["login", "register"] as const) {
    it(`${how}: a user or device ID that is not one (empty, not a string, not well-formed, past the bound) fails it, and the device it made is logged out with its token`, async () => {
      for (const bad of [
        { user_id: "" },
        { device_id: 42 },
        { user_id: "@a\ud800:hs" },
        { device_id: "D".repeat(10_000) },
      ]) {
        const srv = serverAnswering({
          user_id: "@alice:hs",
          access_token: "tok_made",
          device_id: "DEV",
          ...bad,
        });
        const client = clientOf(srv.fetch);
        const attempt =
          how === "login"
            ? client.login({ user: "alice", password: "pw" })
            : client.register({ username: "alice", password: "pw" });
        await assert.rejects(attempt, (e: unknown) => {
          assert.ok(e instanceof MalformedResponseError, String(e));
          assert.equal(e.endpoint, `POST /_matrix/client/v3/${how}`);
          assert.ok(!e.message.includes("tok_made"), "the token is not in the error");
          return true;
        });
        assert.deepEqual(srv.asked.at(-1), { path: "/logout", token: "tok_made" }, JSON.stringify(bad));
        assert.equal(client.isLoggedIn, false);
        await client.close();
      }
    });
  }

  it("an answer whose token no header can carry logs nothing out (there is nothing to log out with)", async () => {
    const srv = serverAnswering({ user_id: "", access_token: "tok with spaces", device_id: "DEV" });
    const client = clientOf(srv.fetch);
    await assert.rejects(client.login({ user: "alice", password: "pw" }), MalformedResponseError);
    assert.deepEqual(
      srv.asked.map((a) => a.path),
      ["/login"],
    );
    await client.close();
  });
});
