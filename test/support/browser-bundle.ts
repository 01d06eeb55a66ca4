// Bundling Keyroom for the browser as an application would (esbuild, platform browser, minified, no
// plugin or stub), from the sources: the `source` condition mirrors the published one. Shared by the
// bundle test (test/package/browser-bundle.test.ts) and the bench (bench/browser), so both measure
// the same thing.
import { gzipSync } from "node:zlib";
import { build, type Metafile } from "esbuild";

/** What the size target is about: client + E2EE + IndexedDB stores, `import { MatrixClient } from "keyroom"`. */
export const BROWSER_CLIENT_ENTRY =
  'export { MatrixClient, IndexedDbClientStore } from "keyroom"; export { IndexedDbCryptoStore } from "keyroom/store";';

const root = new URL("../..", import.meta.url).pathname;

export interface BrowserBundle {
  readonly bytes: Uint8Array;
  /** Minified and gzipped, in bytes. */
  readonly gzip: number;
  readonly metafile: Metafile;
}

/** Bundles `contents` (a module's source) or the module at `entry`. */
export async function bundleForBrowser(
  source: { contents: string } | { entry: string },
): Promise<BrowserBundle> {
  const r = await build({
    ...("entry" in source
      ? { entryPoints: [source.entry] }
      : { stdin: { contents: source.contents, resolveDir: root, loader: "ts" } }),
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

/**
 * Where the bytes go: minified bytes in the output per npm package (`zod`, `@noble/curves`) and per
 * folder of src/ (`src/e2ee/verification`; a file directly in a layer folder counts as itself), or
 * per file with `byFile`; largest first, parts left out by tree-shaking not listed.
 */
export function bundleBreakdown(
  metafile: Metafile,
  opts: { byFile?: boolean } = {},
): [part: string, bytes: number][] {
  const parts = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
      const part = opts.byFile ? file : (pkg ?? file.split("/").slice(0, 3).join("/"));
      parts.set(part, (parts.get(part) ?? 0) + bytesInOutput);
    }
  }
  return [...parts].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
}
