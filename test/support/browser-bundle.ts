// Bundling Keyroom for the browser as an application would (esbuild, platform browser, minified, no
// plugin or stub), from the sources: the `source` condition mirrors the published one. Shared by the
// bundle test (test/package/browser-bundle.test.ts) and the bench (bench/browser), so both measure
// the same thing.
import { gzipSync } from "node:zlib";
import { type BuildOptions, build, type Metafile } from "esbuild";

/** What the size target is about: client + E2EE + IndexedDB stores, `import { MatrixClient } from "keyroom"`. */
export const BROWSER_CLIENT_ENTRY =
  'export { MatrixClient, IndexedDbClientStore } from "keyroom"; export { IndexedDbCryptoStore } from "keyroom/store";';

const root = new URL("../..", import.meta.url).pathname;

/** How an application's bundler would build for the browser: ESM, minified, the `source` condition. */
export const BROWSER_BUILD = {
  bundle: true,
  platform: "browser",
  format: "esm",
  minify: true,
  write: false,
  metafile: true,
  conditions: ["source"],
  logLevel: "silent",
} as const satisfies BuildOptions;

export interface BrowserBundle {
  readonly bytes: Uint8Array;
  /** Minified and gzipped, in bytes. */
  readonly gzip: number;
  readonly metafile: Metafile;
}

/** When a chunk of a code-split bundle is loaded. */
export type ChunkLoad =
  /** With the page: the entry and what it imports statically. */
  | "initial"
  /** When a client with `encryption` logs in or restores its session: the E2EE engine. */
  | "engine"
  /** On first use of a feature (verification, key backup, recovery, …). */
  | "on-demand";

/** One output file of a code-split bundle. */
export interface BrowserChunk {
  /** Path relative to the output folder (`entry.js`, `chunk-XXXX.js`). */
  readonly path: string;
  readonly bytes: Uint8Array;
  /** Minified and gzipped, in bytes. */
  readonly gzip: number;
  readonly load: ChunkLoad;
}

/**
 * A code-split bundle, as an application's bundler makes it by default (Vite, webpack; esbuild with
 * `splitting`): each dynamic `import()` becomes chunks loaded on first use. Sizes are gzipped
 * bytes, each file gzipped on its own (as served).
 */
export interface SplitBrowserBundle {
  /** The chunks reachable from the entry (static and dynamic imports), each with when it loads. */
  readonly chunks: readonly BrowserChunk[];
  /** Loaded with the page. */
  readonly initialGzip: number;
  /** Loaded with the page plus the engine: what a client with encryption runs with. */
  readonly sessionGzip: number;
  /** Every reachable chunk, the on-demand features included. */
  readonly totalGzip: number;
  readonly metafile: Metafile;
}

/** Bundles `contents` (a module's source) or the module at `entry`, in one file. */
export async function bundleForBrowser(
  source: { contents: string } | { entry: string },
): Promise<BrowserBundle> {
  const r = await build({
    ...("entry" in source
      ? { entryPoints: [source.entry] }
      : { stdin: { contents: source.contents, resolveDir: root, loader: "ts" } }),
    ...BROWSER_BUILD,
  });
  const bytes = r.outputFiles[0]?.contents ?? new Uint8Array(0);
  return { bytes, gzip: gzipSync(bytes).length, metafile: r.metafile };
}

/** The module whose dynamic import loads the E2EE engine (`EncryptionSession.start`). */
export const ENGINE_MODULE = "src/client/encryption/client-crypto.ts";

/** Bundles `contents` split at its dynamic imports (esbuild `splitting`, ESM, minified). */
export async function bundleForBrowserSplit(contents: string): Promise<SplitBrowserBundle> {
  const outdir = `${root}.bundle-out`;
  const r = await build({
    stdin: { contents, resolveDir: root, loader: "ts", sourcefile: "entry.ts" },
    ...BROWSER_BUILD,
    splitting: true,
    outdir,
    entryNames: "entry",
  });
  const base = (p: string): string => p.split("/").pop() ?? p;
  const outputs = new Map(Object.entries(r.metafile.outputs).map(([k, v]) => [base(k), v]));
  // The chunks `start` leads to, itself included, through the imports `follow` accepts.
  const reach = (
    start: string | undefined,
    follow: (kind: string) => boolean,
    into = new Set<string>(),
  ): Set<string> => {
    if (start === undefined || into.has(start)) return into;
    into.add(start);
    for (const i of outputs.get(start)?.imports ?? []) {
      if (follow(i.kind)) reach(base(i.path), follow, into);
    }
    return into;
  };
  // What loads with a chunk: itself and its static imports, transitively.
  const staticImports = (kind: string): boolean => kind === "import-statement";
  const named = (pred: (o: Metafile["outputs"][string]) => boolean): string | undefined =>
    [...outputs].find(([, o]) => pred(o))?.[0];
  const entry = named((o) => o.entryPoint === "<stdin>" || o.entryPoint?.endsWith("entry.ts") === true);
  const initial = reach(entry, staticImports);
  const engineChunk = named((o) => o.entryPoint === ENGINE_MODULE);
  const engine = reach(engineChunk, staticImports);
  // Reachable at all: static and dynamic imports from the entry (esbuild also emits chunks for
  // dynamic imports in code that tree-shaking dropped; nothing loads those).
  const reachable = reach(entry, () => true);
  const chunks: BrowserChunk[] = r.outputFiles
    .map((f) => ({ path: base(f.path), bytes: f.contents }))
    .filter((f) => f.path.endsWith(".js") && reachable.has(f.path))
    .map((f) => ({
      ...f,
      gzip: gzipSync(f.bytes).length,
      load: initial.has(f.path) ? "initial" : engine.has(f.path) ? "engine" : "on-demand",
    }));
  const sum = (loads: readonly ChunkLoad[]): number =>
    chunks.filter((c) => loads.includes(c.load)).reduce((n, c) => n + c.gzip, 0);
  return {
    chunks,
    initialGzip: sum(["initial"]),
    sessionGzip: sum(["initial", "engine"]),
    totalGzip: sum(["initial", "engine", "on-demand"]),
    metafile: r.metafile,
  };
}

/**
 * Where the bytes go: minified bytes in the output per npm package (`zod`, `@noble/curves`) and per
 * folder of src/ (`src/e2ee/verification`; a file directly in a layer folder counts as itself), or
 * per file with `byFile`; largest first, parts left out by tree-shaking not listed.
 */
export function bundleBreakdown(
  metafile: Metafile,
  opts: { byFile?: boolean; outputs?: (name: string) => boolean } = {},
): [part: string, bytes: number][] {
  const parts = new Map<string, number>();
  for (const [name, output] of Object.entries(metafile.outputs)) {
    if (opts.outputs !== undefined && !opts.outputs(name.split("/").pop() ?? name)) continue;
    for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
      const part = opts.byFile ? file : (pkg ?? file.split("/").slice(0, 3).join("/"));
      parts.set(part, (parts.get(part) ?? 0) + bytesInOutput);
    }
  }
  return [...parts].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
}
