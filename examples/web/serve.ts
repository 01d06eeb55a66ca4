// `npm run web`: starts the development homeserver and serves the web chat (bundled with esbuild,
// no plugin or stub: the package's `browser` conditions keep Node-only code out), printing the URL.
// Tests start it the same way through `startWebExample`.
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build } from "esbuild";
import { startDevServer } from "keyroom/devserver";

const here = fileURLToPath(new URL(".", import.meta.url));

export interface WebExample {
  /** The chat's page. */
  readonly url: string;
  readonly homeserverUrl: string;
  close(): Promise<void>;
}

export interface WebExampleOptions {
  /** Port of the page (default 8080; 0 for any free port). */
  readonly port?: number;
  /** Port of the devserver started alongside (default 8008; 0 for any). Ignored with `homeserverUrl`. */
  readonly homeserverPort?: number;
  /** Use this homeserver instead of starting a devserver. */
  readonly homeserverUrl?: string;
  /** Keep the devserver's data in this SQLite file (default: in memory). */
  readonly dbPath?: string;
  /** More scripts to serve, bundled like the app: URL path (e.g. `/worker.js`) → TypeScript file. */
  readonly scripts?: Readonly<Record<string, string>>;
}

const BUNDLE_OPTIONS: BuildOptions & { write: false } = {
  bundle: true,
  platform: "browser",
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: "inline",
  write: false,
  // This repository runs from its TypeScript sources; an app using the published package needs no
  // condition at all.
  conditions: ["source"],
  logLevel: "silent",
};

/** A script and Keyroom bundled for the browser in one file (the service worker). */
async function bundle(entry: string): Promise<Uint8Array> {
  const result = await build({ ...BUNDLE_OPTIONS, entryPoints: [entry] });
  const out = result.outputFiles[0];
  if (out === undefined) throw new Error("esbuild produced no output");
  return out.contents;
}

/**
 * The page and its workers, code-split as an app's bundler does by default: the E2EE engine and the
 * features Keyroom loads on first use are chunks (`/chunks/…`) that the browser imports when they
 * are needed. Returns URL path → file. (A service worker may not `import()`, so it is one file.)
 */
async function bundleSplit(entries: Readonly<Record<string, string>>): Promise<Map<string, Uint8Array>> {
  const outdir = `${here}.out`;
  const result = await build({
    ...BUNDLE_OPTIONS,
    entryPoints: Object.entries(entries).map(([urlPath, input]) => ({
      in: input,
      out: urlPath.slice(1, -3),
    })),
    splitting: true,
    outdir,
    chunkNames: "chunks/[name]-[hash]",
  });
  return new Map(result.outputFiles.map((f) => [f.path.slice(outdir.length), f.contents]));
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
};

export async function startWebExample(opts: WebExampleOptions = {}): Promise<WebExample> {
  const devserver =
    opts.homeserverUrl === undefined
      ? await startDevServer({
          port: opts.homeserverPort ?? 8008,
          ...(opts.dbPath !== undefined ? { dbPath: opts.dbPath } : { memory: true }),
        })
      : undefined;
  const homeserverUrl = opts.homeserverUrl ?? devserver?.baseUrl ?? "";
  const files = new Map<string, Uint8Array | string>([
    ["/", await readFile(`${here}index.html`, "utf8")],
    ["/style.css", await readFile(`${here}style.css`, "utf8")],
    ["/sw.js", await bundle(`${here}sw.ts`)],
    ["/config.json", JSON.stringify({ homeserverUrl })],
  ]);
  for (const [urlPath, body] of await bundleSplit({ "/app.js": `${here}app.ts`, ...opts.scripts })) {
    files.set(urlPath, body);
  }
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const body = files.get(path === "/index.html" ? "/" : path);
    if (req.method !== "GET" || body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const ext = path === "/" ? "html" : (path.split(".").pop() ?? "");
    res.writeHead(200, {
      "Content-Type": TYPES[ext] ?? "application/octet-stream",
      "Cache-Control": "no-store",
    });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    homeserverUrl,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await devserver?.close();
    },
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env.PORT ?? 8080);
  const web = await startWebExample({
    port,
    ...(process.env.KEYROOM_DB ? { dbPath: process.env.KEYROOM_DB } : {}),
  });
  console.log(`Keyroom web chat: ${web.url}`);
  console.log(`Development homeserver: ${web.homeserverUrl} (registration open; data in memory)`);
  const stop = () => void web.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
