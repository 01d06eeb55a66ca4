// The `browser` section of `npm run bench`: Keyroom in Debian's Chromium (playwright-core). Serves
// bench/browser/page.ts bundled for the browser and libolm's WASM build as published, reads the
// page's figures, and adds the bundle size (measured with or without Chromium) and its largest
// parts. Prints a table; the last stdout line is the JSON.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import {
  BROWSER_CLIENT_ENTRY,
  bundleBreakdown,
  bundleForBrowser,
  bundleForBrowserSplit,
} from "../../test/support/browser-bundle.ts";
import { CHROMIUM, launchChromium, skipReasonForChromium } from "../../test/support/chromium.ts";
import { makeFakeDevices } from "../e2ee/fake-devices.ts";
import { rotationFixture } from "../e2ee/rotation.ts";
import { formatRatio, spread } from "../stats.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const quick = process.argv.includes("--quick") || process.env.KEYROOM_BENCH_QUICK === "1";
/** matrix-sdk-crypto-wasm's browser entry and what it loads, served from its package as published. */
const WASM_FILES = ["index.mjs", "pkg/matrix_sdk_crypto_wasm_bg.js", "pkg/matrix_sdk_crypto_wasm_bg.wasm"];

interface PageResult {
  readonly megolm?: readonly { keyroom: number; keyroomSync: number; libolm: number }[];
  readonly roomEvents?: readonly { keyroom: number; cryptoWasm: number }[];
  readonly store?: { createMs: number; openMs: number; longestTaskMs: number };
  readonly error?: string;
}

// The bundle size needs no browser: the same bundle the size guard measures
// (test/package/browser-bundle.test.ts), code-split as Vite and webpack do by default, with what
// loads when and where its bytes go; and the same in one file (esbuild without splitting).
const split = await bundleForBrowserSplit(BROWSER_CLIENT_ENTRY);
const single = await bundleForBrowser({ contents: BROWSER_CLIENT_ENTRY });
const kb = (n: number): string => `${(n / 1024).toFixed(1)} KB gz`;
const bundleRows = [
  ["Bundle: client + E2EE + IndexedDB store, initial chunks", kb(split.initialGzip), "", "", ""],
  ["  with the E2EE engine (loaded at login / restore)", kb(split.sessionGzip), "", "", "≤ 80 KB"],
  ["  total, with the features loaded on first use", kb(split.totalGzip), "", "", ""],
  ["  in one file (esbuild without splitting)", kb(single.gzip), "", "", ""],
];
const largestParts = (["initial", "engine", "on-demand"] as const)
  .map((load) => {
    const paths = new Set(split.chunks.filter((c) => c.load === load).map((c) => c.path));
    const parts = bundleBreakdown(split.metafile, { outputs: (o) => paths.has(o) })
      .slice(0, 8)
      .map(([part, n]) => `${part} ${(n / 1024).toFixed(1)}`)
      .join(", ");
    return `  ${load}, largest parts (KB minified): ${parts}`;
  })
  .join("\n");
const bundleJson = {
  bundleInitialGzipBytes: split.initialGzip,
  bundleSessionGzipBytes: split.sessionGzip,
  bundleTotalGzipBytes: split.totalGzip,
  bundleSingleFileGzipBytes: single.gzip,
};

if (skipReasonForChromium() !== undefined) {
  for (const row of bundleRows) console.log(row.filter((cell) => cell !== "").join("  "));
  console.log(largestParts);
  console.log(JSON.stringify({ skipped: `no ${CHROMIUM}`, ...bundleJson }));
} else {
  const page = (await bundleForBrowser({ entry: `${root}bench/browser/page.ts` })).bytes;
  const olmDir = `${root}node_modules/@towns-protocol/olm/`;
  const wasmDir = `${root}node_modules/@matrix-org/matrix-sdk-crypto-wasm/`;
  const [rounds, batch, reps] = quick ? [4, 200, 3] : [10, 500, 5];
  const roomBatch = quick ? 40 : 100;
  // Room events for both machines: 4 senders' sessions in one room, taken in turn (each event
  // once per machine, warm-up batches included), encrypted here on Node, where it is quick.
  const roomId = "!browser:bench.test";
  const fixture = rotationFixture(4, reps * (rounds + 1) * roomBatch, makeFakeDevices(2, 2), roomId);
  const roomEvents = JSON.stringify({
    roomId,
    entries: fixture.entries,
    events: fixture.events.map((e) => e.json),
  });
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    try {
      if (path === "/") {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end('<!doctype html><script type="module" src="/bench.js"></script>');
      } else if (path === "/bench.js") {
        res.writeHead(200, { "Content-Type": "text/javascript" });
        res.end(page);
      } else if (path === "/olm/olm.web.mjs" || path === "/olm/olm.wasm") {
        const type = path.endsWith(".wasm") ? "application/wasm" : "text/javascript";
        res.writeHead(200, { "Content-Type": type });
        res.end(await readFile(olmDir + path.slice("/olm/".length)));
      } else if (
        WASM_FILES.includes(path.slice("/crypto-wasm/".length)) &&
        path.startsWith("/crypto-wasm/")
      ) {
        const type = path.endsWith(".wasm") ? "application/wasm" : "text/javascript";
        res.writeHead(200, { "Content-Type": type });
        res.end(await readFile(wasmDir + path.slice("/crypto-wasm/".length)));
      } else if (path === "/room-events.json") {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(roomEvents);
      } else res.writeHead(404).end();
    } catch {
      res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const browser = await launchChromium();
  try {
    const tab = await browser.newPage();
    const query = `?rounds=${rounds}&batch=${batch}&reps=${reps}&roomBatch=${roomBatch}`;
    await tab.goto(`http://127.0.0.1:${port}/${query}`);
    const handle = await tab.waitForFunction(
      () => (globalThis as { benchResult?: unknown }).benchResult,
      undefined,
      {
        timeout: 0,
      },
    );
    const result = (await handle.jsonValue()) as PageResult;
    if (
      result.error !== undefined ||
      result.megolm === undefined ||
      result.roomEvents === undefined ||
      result.store === undefined
    ) {
      throw new Error(`the bench page failed: ${result.error}`);
    }
    const ratios = result.megolm.map((r) => r.keyroom / r.libolm);
    const syncRatios = result.megolm.map((r) => r.keyroomSync / r.libolm);
    const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const roomRatios = result.roomEvents.map((r) => r.keyroom / r.cryptoWasm);
    const libolmRate = `libolm WASM ${Math.round(median(result.megolm.map((r) => r.libolm)))}/s`;
    const rows = [
      ["Workload (Chromium, same page)", "Keyroom", "Peer", "Ratio, median (min–max)", "Target"],
      [
        "Megolm decrypt (200 B), Web Crypto",
        `${Math.round(median(result.megolm.map((r) => r.keyroom)))}/s`,
        libolmRate,
        formatRatio(spread(ratios)),
        `≥ 1x ${median(ratios) >= 1 ? "✓" : "✗"}`,
      ],
      [
        "  JavaScript only (decrypt)",
        `${Math.round(median(result.megolm.map((r) => r.keyroomSync)))}/s`,
        libolmRate,
        formatRatio(spread(syncRatios)),
        "",
      ],
      [
        "Room-event decrypt (OlmMachine, memory)",
        `${Math.round(median(result.roomEvents.map((r) => r.keyroom)))}/s`,
        `crypto-wasm ${Math.round(median(result.roomEvents.map((r) => r.cryptoWasm)))}/s`,
        formatRatio(spread(roomRatios)),
        `≥ 2x ${median(roomRatios) >= 2 ? "✓" : "✗"}`,
      ],
      ["Store open, passphrase (210 000 PBKDF2)", `${result.store.openMs.toFixed(0)} ms`, "", "", ""],
      [
        "  longest main-thread task meanwhile",
        `${result.store.longestTaskMs.toFixed(0)} ms`,
        "",
        "",
        "≤ 50 ms",
      ],
      ...bundleRows,
    ];
    const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
    for (const r of rows)
      console.log(
        r
          .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
          .join("  "),
      );
    console.log(largestParts);
    console.log(
      JSON.stringify({
        ...result,
        megolmRatios: ratios,
        megolmSyncRatios: syncRatios,
        roomEventRatios: roomRatios,
        ...bundleJson,
      }),
    );
  } finally {
    await browser.close();
    server.close();
  }
}
