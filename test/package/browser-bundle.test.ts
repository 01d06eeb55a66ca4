// `import { MatrixClient } from "keyroom"` bundles for the browser with esbuild and no plugin, stub or
// configuration: the package conditions (`browser` / `node`) keep SQLite, the file system and Node's
// crypto out. Bundled here from the sources (the `source` condition mirrors the published one; the
// build test bundles dist/ with no condition at all). The gzipped size is held under a budget.
import assert from "node:assert/strict";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { build, type Metafile } from "esbuild";

/** Client + E2EE + IndexedDB store, minified and gzipped: a guard against growth (211 KB today with esbuild, zod is 94 KB of it; the 80 KB target is open, see docs/browser.md). */
export const BROWSER_BUNDLE_BUDGET_GZIP = 220 * 1024;

const root = new URL("../..", import.meta.url).pathname;

export async function bundleForBrowser(
  contents: string,
): Promise<{ bytes: Uint8Array; gzip: number; metafile: Metafile }> {
  const r = await build({
    stdin: { contents, resolveDir: root, loader: "ts" },
    bundle: true,
    platform: "browser",
    format: "esm",
    minify: true,
    write: false,
    metafile: true,
    conditions: ["source"],
    logLevel: "silent",
  });
  const bytes = r.outputFiles[0]?.contents ?? new Uint8Array(0);
  return { bytes, gzip: gzipSync(bytes).length, metafile: r.metafile };
}

test("keyroom bundles for the browser: no Node built-in, no Node-only store, under the size budget", async () => {
  const { gzip, metafile } = await bundleForBrowser(
    'export { MatrixClient, IndexedDbClientStore } from "keyroom"; export { IndexedDbCryptoStore } from "keyroom/store";',
  );
  const inputs = Object.keys(metafile.inputs);
  const nodeOnly = inputs.filter((f) =>
    /^node:|better-sqlite3|sodium-native|sqlite|file-store|backend-node|platform\/node/.test(f),
  );
  assert.deepEqual(nodeOnly, []);
  assert.ok(inputs.includes("src/client/platform/browser.ts"), "the browser platform is the one bundled");
  assert.ok(inputs.includes("src/crypto/primitives/backend-noble.ts"), "the portable crypto back end");
  console.log(`browser bundle (client + E2EE + IndexedDB store): ${(gzip / 1024).toFixed(1)} KB gzipped`);
  assert.ok(
    gzip <= BROWSER_BUNDLE_BUDGET_GZIP,
    `${gzip} bytes gzipped, budget ${BROWSER_BUNDLE_BUDGET_GZIP}`,
  );
});
