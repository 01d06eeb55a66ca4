// Vite and webpack, from their own install (test/package/bundlers, `npm ci --prefix` in .ci/run), run
// on a throwaway web app that imports the published package as an app would: `node_modules/keyroom`
// pointing at the repository with dist/ built. No plugin, stub, alias or resolve setting.
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUNDLERS_DIR = new URL("../package/bundlers/node_modules/", import.meta.url).pathname;

/** The loud line when the bundlers are not installed; undefined when they are. */
export function skipReasonForBundlers(): string | undefined {
  if (existsSync(join(BUNDLERS_DIR, "vite")) && existsSync(join(BUNDLERS_DIR, "webpack"))) return undefined;
  const reason = "SKIPPED: Vite and webpack bundling (npm ci --prefix test/package/bundlers)";
  console.log(`\n${"!".repeat(reason.length)}\n${reason}\n${"!".repeat(reason.length)}\n`);
  return reason;
}

export interface BundledApp {
  /** The output folder: index.html (Vite) or the entry's chunk (webpack) and its lazy chunks. */
  outDir: string;
  /** The script a page loads first, relative to `outDir`. */
  entry: string;
  /** Every JavaScript file written, relative to `outDir`, with its gzipped size (each file on its own). */
  scripts: { file: string; gzip: number; text: string }[];
}

/** A web app in `dir` whose one module is `main`, with `keyroom` resolving to `packageRoot`. */
export function writeWebApp(dir: string, packageRoot: string, main: string): void {
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  symlinkSync(packageRoot, join(dir, "node_modules", "keyroom"), "dir");
  writeFileSync(join(dir, "main.js"), main);
  writeFileSync(join(dir, "index.html"), '<!doctype html><script type="module" src="./main.js"></script>\n');
}

function scriptsIn(outDir: string): BundledApp["scripts"] {
  return readdirSync(outDir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".js"))
    .map((file) => {
      const bytes = readFileSync(join(outDir, file));
      return { file, gzip: gzipSync(bytes).length, text: bytes.toString("utf8") };
    });
}

/** `vite build` of the app, as `npm create vite` projects do it (production, code-split). */
export async function buildWithVite(appDir: string): Promise<BundledApp> {
  const vite = (await import(join(BUNDLERS_DIR, "vite/dist/node/index.js"))) as {
    build(config: object): Promise<unknown>;
  };
  const outDir = join(appDir, "vite-out");
  await vite.build({ root: appDir, logLevel: "error", build: { outDir, emptyOutDir: true } });
  const html = readFileSync(join(outDir, "index.html"), "utf8");
  const entry = /src="\/?([^"]+\.js)"/.exec(html)?.[1];
  if (entry === undefined) throw new Error(`no entry script in Vite's index.html: ${html}`);
  return { outDir, entry, scripts: scriptsIn(outDir) };
}

/** webpack in production mode for the web, its defaults otherwise; throws on any error or warning. */
export async function buildWithWebpack(appDir: string): Promise<BundledApp> {
  const { default: webpack } = (await import(join(BUNDLERS_DIR, "webpack/lib/index.js"))) as {
    default: (config: object, done: (err: Error | null, stats?: WebpackStats) => void) => void;
  };
  const outDir = join(appDir, "webpack-out");
  const stats = await new Promise<WebpackStats>((resolve, reject) =>
    webpack(
      { mode: "production", context: appDir, entry: "./main.js", target: "web", output: { path: outDir } },
      (err, s) => (err !== null || s === undefined ? reject(err) : resolve(s)),
    ),
  );
  const { errors = [], warnings = [] } = stats.toJson({ all: false, errors: true, warnings: true });
  const problems = [...errors, ...warnings].map((p) => p.message);
  if (problems.length > 0) throw new Error(`webpack: ${problems.join("\n")}`);
  return { outDir, entry: "main.js", scripts: scriptsIn(outDir) };
}

interface WebpackStats {
  toJson(o: object): { errors?: { message: string }[]; warnings?: { message: string }[] };
}
