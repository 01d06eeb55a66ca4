// Where a virtual user keeps its stores under the appservice's `dataDir`: one directory per user,
// never shared by two users of a namespace, and the same as before for the usual localparts (a
// data directory made by an earlier version is found again).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { virtualUserPaths } from "./appservice.ts";

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
