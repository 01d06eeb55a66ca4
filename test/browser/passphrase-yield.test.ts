// Secret storage's passphrase derivation with progress in Chromium: it yields to the event loop
// between steps through a MessageChannel (browsers have no `setImmediate`), so a page stays live.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { bundleForBrowser } from "../support/browser-bundle.ts";
import { scaledMs } from "../support/budget.ts";
import { collectPageErrors, launchChromium, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();
const fixture = new URL("./fixtures/yield-page.ts", import.meta.url).pathname;

interface PageResult {
  readonly error?: string;
  readonly hasSetImmediate: boolean;
  readonly method: string;
  readonly progressReports: number;
  readonly lastProgress: number;
  readonly ticks: number;
  readonly sameKey: boolean;
}

describe("the portable event-loop yield in Chromium", { skip, timeout: scaledMs(60_000) }, () => {
  let server: Server;
  let browser: Browser;
  let url: string;

  before(async () => {
    const page = (await bundleForBrowser({ entry: fixture })).bytes;
    server = createServer((req, res) => {
      if (req.url === "/page.js") {
        res.writeHead(200, { "Content-Type": "text/javascript" }).end(page);
      } else {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end('<!doctype html><script type="module" src="/page.js"></script>');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    server?.close();
  });

  it("secret storage's stepped passphrase derivation yields through MessageChannel and gives the one-shot key", async () => {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(url);
    const handle = await page.waitForFunction(
      () => (globalThis as { yieldResult?: unknown }).yieldResult,
      undefined,
      { timeout: scaledMs(30_000) },
    );
    const r = (await handle.jsonValue()) as PageResult;
    assert.equal(r.error, undefined, `${r.error} ${errors.join("\n")}`);
    assert.equal(r.hasSetImmediate, false, "Chromium has no setImmediate");
    assert.equal(r.method, "MessageChannel");
    assert.ok(r.progressReports > 2, `${r.progressReports} progress reports`);
    assert.equal(r.lastProgress, 1);
    assert.ok(r.ticks > 0, "timers ran between the derivation's steps");
    assert.equal(r.sameKey, true);
    assert.deepEqual(errors, []);
  });
});
