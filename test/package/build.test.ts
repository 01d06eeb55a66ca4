// The published shape: `tsc` builds dist/, and the package's exports, its `imports` back-end switch and
// its bin work from the built JavaScript alone (no `source` condition, no tsx); esbuild bundles it
// for the browser with no configuration.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { bundleBreakdown } from "../support/browser-bundle.ts";
import { scaledMs } from "../support/budget.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

function node(args: string[]): string {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

test("the package builds and its entry points load from dist/", { timeout: scaledMs(120_000) }, async () => {
  // A fresh dist/: files left by an older build would hide what this one ships.
  rmSync(join(root, "dist"), { recursive: true, force: true });
  const build = spawnSync(`${root}/node_modules/.bin/tsc`, ["-p", "tsconfig.build.json"], {
    cwd: root,
    encoding: "utf8",
  });
  assert.equal(build.status, 0, build.stdout + build.stderr);
  // Test-only code (tests, child-process fixtures, test-support folders) does not ship.
  const testOnly = filesUnder(join(root, "dist")).filter((f) =>
    /(\.test\.|\.fixture\.|(^|\/)test-support\/)/.test(f),
  );
  assert.deepEqual(testOnly, []);

  const probe = `
    const crypto = await import("keyroom/crypto");
    const main = await import("keyroom");
    await import("keyroom/e2ee"); await import("keyroom/store"); await import("keyroom/devserver");
    await import("keyroom/bot"); await import("keyroom/bot/testing");
    await import("keyroom/appservice"); await import("keyroom/bot/appservice");
    const a = crypto.Account.create();
    console.log(JSON.stringify({ backend: crypto.primitives.backendName, key: a.identityKeys.ed25519.length, client: typeof main.MatrixClient }));`;
  const onNode = JSON.parse(node(["--input-type=module", "-e", probe]));
  assert.deepEqual(onNode, { backend: "node", key: 43, client: "function" });
  const portable = JSON.parse(node(["--conditions=keyroom-noble", "--input-type=module", "-e", probe]));
  assert.equal(portable.backend, "noble");

  assert.match(node(["dist/cli/main.js", "--help"]), /Usage: keyroom/);

  // What a web app does: bundle the published files for the browser with no plugin, stub or
  // configuration; the `browser` conditions leave SQLite, the file system and node:crypto out.
  const web = await esbuild.build({
    stdin: { contents: 'export { MatrixClient } from "keyroom";', resolveDir: root },
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(web.metafile.inputs);
  assert.ok(inputs.includes("dist/browser.js") && inputs.includes("dist/client/platform/browser.js"));
  assert.ok(inputs.includes("dist/crypto/primitives/symmetric-noble.js"), "the portable symmetric half");
  assert.deepEqual(
    inputs.filter((f) => /^node:|sqlite|sodium|backend-node|symmetric-node|platform\/node/.test(f)),
    [],
  );
  // package.json's `sideEffects` names dist/wire/zod.js, so zod's English messages survive tree-shaking.
  const kept = bundleBreakdown(web.metafile, { byFile: true }).map(([file]) => file);
  assert.ok(kept.includes("dist/wire/zod.js") && kept.includes("node_modules/zod/v4/locales/en.js"));
});
