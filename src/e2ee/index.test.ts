// docs/e2ee.md, "Limits": "every bound an attacker could push on is a named, exported constant".
// Each constant that table names must be exported by the `keyroom/e2ee` entry.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import * as e2ee from "keyroom/e2ee";

describe("keyroom/e2ee entry", () => {
  it("exports every constant of docs/e2ee.md's Limits table", () => {
    const doc = readFileSync(new URL("../../docs/e2ee.md", import.meta.url), "utf8");
    const section = doc.slice(doc.indexOf("## Limits"), doc.indexOf("\n## ", doc.indexOf("## Limits") + 1));
    const names = [...section.matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((m) => m[1] ?? "");
    assert.ok(names.length >= 20, `only ${names.length} constants found in the table`);
    const exported = e2ee as Record<string, unknown>;
    const missing = names.filter((name) => typeof exported[name] !== "number");
    assert.deepEqual(missing, [], "named in docs/e2ee.md but not exported by keyroom/e2ee");
  });
});
