// Where a virtual user keeps its stores under the appservice's `dataDir`: one directory per user,
// never shared by two users of a namespace, and the same as before for the usual localparts (a
// data directory made by an earlier version is found again).
import assert from "node:assert/strict";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { FetchLike } from "../client/transport.ts";
import { Appservice, virtualUserPaths } from "./appservice.ts";

describe("virtual users' directories", () => {
  it("differ for every two users of one server, and keep their names for the usual localparts", () => {
    const ids = [
      "@_br_a/b:example.org",
      "@_br_a+b:example.org",
      "@_br_a_b:example.org",
      "@_br_a~b:example.org",
      "@_br_a~002fb:example.org",
      "@_br_a=2fb:example.org",
      "@_br_a!b:example.org",
      "@_br_a\u00e9b:example.org",
      "@_br_a:b:example.org",
      "@bot:example.org",
    ];
    const dirs = ids.map((id) => virtualUserPaths("/data", id).dir);
    assert.equal(new Set(dirs).size, ids.length, dirs.join("\n"));
    assert.equal(virtualUserPaths("/data", "@bot:example.org").dir, join("/data", "_bot_example.org"));
    assert.equal(
      virtualUserPaths("/data", "@_br_a_b:example.org:8448").dir,
      join("/data", "__br_a_b_example.org_8448"),
    );
    assert.equal(virtualUserPaths("/data", "@a.b=c-d:[::1]:8448").dir, join("/data", "_a.b=c-d____1__8448"));
  });
});

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A homeserver as empty as a new one, that knows every user already. */
const homeserver: FetchLike = async (url, init) => {
  const p = new URL(url).pathname;
  if (p.endsWith("/account/whoami")) return json({ user_id: "@bot:hs" });
  if (p.endsWith("/register")) return json({ errcode: "M_USER_IN_USE", error: "in use" }, 400);
  if ((init.method ?? "GET") === "PUT" && p.includes("/devices/")) return json({});
  if (p.endsWith("/keys/upload")) return json({ one_time_key_counts: { signed_curve25519: 50 } });
  if (p.endsWith("/keys/query")) return json({ device_keys: {}, failures: {} });
  if (p.endsWith("/joined_rooms")) return json({ joined_rooms: [] });
  if (p.endsWith("/sync")) return json({ next_batch: "s" });
  return json({ errcode: "M_NOT_FOUND", error: "not here" }, 404);
};

describe("virtual users' directories made by an earlier version", () => {
  it("are used again at start: the user keeps its device and its keys", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "keyroom-as-dirs-"));
    const user = "@_br_a/b:hs";
    const open = async () => {
      const as = new Appservice({
        registration: {
          id: "dirs",
          url: null,
          as_token: "as_token_dirs",
          hs_token: "hs_token_dirs",
          sender_localpart: "bot",
          namespaces: { users: [{ exclusive: true, regex: "@_br_.*" }] },
        },
        homeserverUrl: "https://hs.invalid",
        dataDir,
        fetch: homeserver,
        clientOptions: { fillTimelineGaps: false },
      });
      await as.start();
      return as;
    };
    try {
      const first = await open();
      const client = await first.user(user, { deviceId: "DEV" });
      const key = client.crypto.getFingerprint();
      await first.close();
      // Where an earlier version kept it.
      await rename(virtualUserPaths(dataDir, user).dir, join(dataDir, "__br_a_b_hs"));
      const again = await open();
      try {
        assert.deepEqual(again.userIds, [user]);
        const restored = await again.user(user);
        assert.equal(restored.deviceId, "DEV");
        assert.equal(restored.crypto.getFingerprint(), key, "the same keys");
      } finally {
        await again.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
