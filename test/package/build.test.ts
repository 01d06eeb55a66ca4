// The published shape: `tsc` builds dist/, and the package's exports, its `imports` back-end switch and
// its bin work from the built JavaScript alone (no `source` condition, no tsx); esbuild, Vite and
// webpack bundle it for the browser with no configuration, and the Vite and webpack apps run an
// encrypted round trip in Chromium.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { bundleBreakdown } from "../support/browser-bundle.ts";
import { scaledMs } from "../support/budget.ts";
import {
  type BundledApp,
  buildWithVite,
  buildWithWebpack,
  skipReasonForBundlers,
  writeWebApp,
} from "../support/bundlers.ts";
import { collectPageErrors, launchChromium, skipReasonForChromium } from "../support/chromium.ts";
import { startTestDevServer } from "../support/devserver.ts";

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
    inputs.filter((f) => /^node:|sqlite|sodium|(backend|symmetric|aead)-node|platform\/node/.test(f)),
    [],
  );
  // package.json's `sideEffects` names dist/wire/zod.js, so zod's English messages survive tree-shaking.
  const kept = bundleBreakdown(web.metafile, { byFile: true }).map(([file]) => file);
  assert.ok(kept.includes("dist/wire/zod.js") && kept.includes("node_modules/zod/v4/locales/en.js"));
});

/**
 * The web app the bundlers build: the client, its IndexedDB stores and, once it logs in, the E2EE
 * engine (a lazy chunk): register, an encrypted room, a message sent and read back decrypted.
 */
const WEB_APP = `import { IndexedDbClientStore, MatrixClient } from "keyroom";
import { IndexedDbCryptoStore } from "keyroom/store";
globalThis.keyroomExports = [MatrixClient, IndexedDbClientStore, IndexedDbCryptoStore].map((f) => typeof f);
async function main() {
  const homeserverUrl = new URLSearchParams(location.search).get("hs");
  const client = new MatrixClient({ homeserverUrl, encryption: true });
  await client.register({ username: "app" + Date.now().toString(36), password: "app password" });
  const roomId = await client.createRoom({ encrypted: true });
  const eventId = await client.sendText(roomId, "bundled hello");
  const event = await client.fetchEvent(roomId, eventId);
  await client.close();
  return { body: event.content.body, decrypted: event.encryption?.decrypted === true };
}
main().then((r) => { globalThis.appResult = r; }, (e) => { globalThis.appResult = { error: String(e) }; });
`;

const TYPES: Record<string, string> = { ".js": "text/javascript", ".html": "text/html" };

/** Serves `app.outDir`; `/` is Vite's index.html, or a page loading webpack's entry script. */
async function serve(app: BundledApp, bundler: "vite" | "webpack"): Promise<{ url: string; close(): void }> {
  const page =
    bundler === "vite"
      ? readFileSync(join(app.outDir, "index.html"))
      : `<!doctype html><script src="/${app.entry}"></script>`;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/") return res.writeHead(200, { "Content-Type": "text/html" }).end(page);
    const file = normalize(join(app.outDir, path));
    if (!file.startsWith(app.outDir)) return res.writeHead(403).end();
    let body: Buffer;
    try {
      body = readFileSync(file);
    } catch {
      return res.writeHead(404).end();
    }
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close() };
}

const kb = (n: number): string => (n / 1024).toFixed(1);

/**
 * Every script of the Vite or the webpack app, each file gzipped: guards against growth, about 0.5 KB
 * above the larger of the two today (docs/browser.md, "Size", 8 December 2026: webpack 191.0, Vite 179.4;
 * 7 December 2026, evening: webpack 179.2, Vite
 * 168.1; 175.8 and 164.9 that afternoon, 163.7 and 153.0 before its review work). esbuild's split bundle has
 * its own budgets (browser-bundle.test.ts).
 */
const BUNDLER_TOTAL_BUDGET_GZIP = 191.5 * 1024;

test("Vite and webpack bundle the published package for the browser with no configuration; each app runs E2EE in Chromium", {
  skip: skipReasonForBundlers(),
  timeout: scaledMs(300_000),
}, async () => {
  const appDir = await mkdtemp(join(tmpdir(), "keyroom-web-app-"));
  const chromiumSkip = skipReasonForChromium();
  const hs = chromiumSkip === undefined ? await startTestDevServer() : undefined;
  const browser = chromiumSkip === undefined ? await launchChromium() : undefined;
  try {
    writeWebApp(appDir, root, WEB_APP);
    for (const [bundler, build] of [
      ["vite", buildWithVite],
      ["webpack", buildWithWebpack],
    ] as const) {
      const app = await build(appDir);
      // Node-only code and built-ins stay out through the package conditions alone.
      for (const { file, text } of app.scripts) {
        assert.doesNotMatch(
          text,
          /better-sqlite3|sodium-native|node:(crypto|fs|http|path)/,
          `${bundler}: ${file}`,
        );
      }
      const entry = app.scripts.find((s) => s.file.endsWith(app.entry));
      assert.ok(entry, `${bundler}: the entry script ${app.entry} was written`);
      assert.ok(app.scripts.length > 1, `${bundler}: the engine and rarely used features are lazy chunks`);
      const total = app.scripts.reduce((n, s) => n + s.gzip, 0);
      console.log(
        `${bundler}: entry ${kb(entry.gzip)} KB, ${app.scripts.length} scripts, total ${kb(total)} KB (gzipped, each file)`,
      );
      assert.ok(total <= BUNDLER_TOTAL_BUDGET_GZIP, `${bundler}: total ${total} B gzipped`);
      if (browser === undefined || hs === undefined) continue;
      const served = await serve(app, bundler);
      const page = await browser.newPage();
      const errors = collectPageErrors(page);
      const loaded = new Set<string>();
      page.on("request", (r) => loaded.add(new URL(r.url()).pathname.slice(1)));
      try {
        await page.goto(`${served.url}?hs=${encodeURIComponent(hs.baseUrl)}`);
        const handle = await page.waitForFunction(
          () => (globalThis as { appResult?: unknown }).appResult,
          null,
          {
            timeout: scaledMs(60_000),
          },
        );
        assert.deepEqual(
          await handle.jsonValue(),
          { body: "bundled hello", decrypted: true },
          errors.join("\n"),
        );
        assert.deepEqual(
          await page.evaluate(() => (globalThis as { keyroomExports?: unknown }).keyroomExports),
          ["function", "function", "function"],
        );
        assert.deepEqual(errors, []);
        const session = app.scripts.filter((s) => loaded.has(s.file));
        assert.ok(session.length > 1, `${bundler}: the engine came as a chunk of its own`);
        const sessionGzip = session.reduce((n, s) => n + s.gzip, 0);
        console.log(
          `${bundler}: an encrypted session loaded ${session.length} scripts, ${kb(sessionGzip)} KB`,
        );
      } finally {
        await page.close();
        served.close();
      }
    }
  } finally {
    await browser?.close();
    await hs?.close();
    await rm(appDir, { recursive: true, force: true });
  }
});
