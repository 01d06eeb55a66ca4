import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { discoverHomeserver, serverNameOf } from "./discovery.ts";
import { ClientError } from "./errors.ts";

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });

function fakeNet(routes: Record<string, () => Response>) {
  const seen: string[] = [];
  return {
    seen,
    fetch: async (url: string) => {
      seen.push(url);
      const r = routes[url];
      if (!r) throw new TypeError("ECONNREFUSED");
      return r();
    },
  };
}
const versions = () => json(200, { versions: ["v1.11"] });

describe("discovery", () => {
  it("extracts the server name from user IDs", () => {
    assert.equal(serverNameOf("@a:example.org"), "example.org");
    assert.equal(serverNameOf("@a:example.org:8448"), "example.org:8448");
    assert.equal(serverNameOf("example.org"), "example.org");
    assert.throws(() => serverNameOf("@nocolon"), ClientError);
  });

  it("follows .well-known to the advertised base URL and validates it with /versions", async () => {
    const net = fakeNet({
      "https://example.org/.well-known/matrix/client": () =>
        json(200, { "m.homeserver": { base_url: "https://matrix.example.org/" } }),
      "https://matrix.example.org/_matrix/client/versions": versions,
    });
    const d = await discoverHomeserver("@alice:example.org", { fetch: net.fetch });
    assert.equal(d.baseUrl, "https://matrix.example.org");
    assert.deepEqual(d.versions.versions, ["v1.11"]);
  });

  it("uses the server name itself when .well-known is 404", async () => {
    const net = fakeNet({
      "https://example.org/.well-known/matrix/client": () => json(404, { errcode: "M_NOT_FOUND" }),
      "https://example.org/_matrix/client/versions": versions,
    });
    assert.equal(
      (await discoverHomeserver("example.org", { fetch: net.fetch })).baseUrl,
      "https://example.org",
    );
  });

  it("fails with DISCOVERY_FAILED on broken documents, bad URLs and non-homeservers", async () => {
    const cases: Record<string, () => Response>[] = [
      { "https://example.org/.well-known/matrix/client": () => new Response("{", { status: 200 }) },
      { "https://example.org/.well-known/matrix/client": () => json(200, { "m.homeserver": {} }) },
      {
        "https://example.org/.well-known/matrix/client": () =>
          json(200, { "m.homeserver": { base_url: "ftp://x" } }),
      },
      { "https://example.org/.well-known/matrix/client": () => json(500, {}) },
      {
        "https://example.org/.well-known/matrix/client": () =>
          json(200, { "m.homeserver": { base_url: "https://nowhere.example" } }),
      },
    ];
    for (const routes of cases) {
      await assert.rejects(
        discoverHomeserver("example.org", { fetch: fakeNet(routes).fetch }),
        (e: unknown) => e instanceof ClientError && e.code === "DISCOVERY_FAILED",
      );
    }
  });

  it("refuses server names that could redirect the lookup", async () => {
    for (const bad of ["evil.org/path", "a@b", "x y", "@u:host/../x"]) {
      const net = fakeNet({});
      await assert.rejects(
        discoverHomeserver(bad, { fetch: net.fetch }),
        (e: unknown) => e instanceof ClientError && e.code === "INVALID_ARGUMENT",
        bad,
      );
      // Refused before any lookup (a failed lookup is a ClientError too, DISCOVERY_FAILED).
      assert.deepEqual(net.seen, [], bad);
    }
  });
});
