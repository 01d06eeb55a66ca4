// The published shape: `tsc` builds dist/, and the package's exports, its `imports` back-end switch and
// its bin work from the built JavaScript alone (no `source` condition, no tsx).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { scaledMs } from "../support/budget.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

function node(args: string[]): string {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test("the package builds and its entry points load from dist/", { timeout: scaledMs(120_000) }, () => {
  const build = spawnSync(`${root}/node_modules/.bin/tsc`, ["-p", "tsconfig.build.json"], {
    cwd: root,
    encoding: "utf8",
  });
  assert.equal(build.status, 0, build.stdout + build.stderr);

  const probe = `
    const crypto = await import("keyroom/crypto");
    const main = await import("keyroom");
    await import("keyroom/e2ee"); await import("keyroom/store"); await import("keyroom/devserver");
    const a = crypto.Account.create();
    console.log(JSON.stringify({ backend: crypto.primitives.backendName, key: a.identityKeys.ed25519.length, client: typeof main.MatrixClient }));`;
  const onNode = JSON.parse(node(["--input-type=module", "-e", probe]));
  assert.deepEqual(onNode, { backend: "node", key: 43, client: "function" });
  const portable = JSON.parse(node(["--conditions=keyroom-noble", "--input-type=module", "-e", probe]));
  assert.equal(portable.backend, "noble");

  assert.match(node(["dist/cli/main.js", "--help"]), /Usage: keyroom/);
});
