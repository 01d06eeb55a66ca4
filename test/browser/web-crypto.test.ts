// Web Crypto in Chromium gives the JavaScript back end's verdicts: Ed25519 verify on crafted
// signatures (BoringSSL alone accepts some that libsodium refuses; web-ed25519.ts narrows what it
// is asked), and Megolm decryptAsync the results and errors of decrypt.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { bundleForBrowser } from "../support/browser-bundle.ts";
import { scaledMs } from "../support/budget.ts";
import { collectPageErrors, launchChromium, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();
const fixture = new URL("./fixtures/web-crypto-page.ts", import.meta.url).pathname;

interface PageResult {
  readonly error?: string;
  readonly backendName: string;
  readonly asyncPrimitivesFaster: boolean;
  readonly webVerifies: number;
  readonly cases: number;
  readonly mismatches: readonly string[];
  readonly megolmChecked: number;
  readonly megolmOutcomes: readonly string[];
  readonly megolmMismatches: readonly number[];
}

describe("Web Crypto primitives in Chromium", { skip, timeout: scaledMs(120_000) }, () => {
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

  it("Ed25519 verdicts on crafted signatures and Megolm decryptAsync equal the synchronous forms", async () => {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(url);
    const handle = await page.waitForFunction(
      () => (globalThis as { webCryptoResult?: unknown }).webCryptoResult,
      undefined,
      { timeout: scaledMs(60_000) },
    );
    const r = (await handle.jsonValue()) as PageResult;
    assert.equal(r.error, undefined, `${r.error} ${errors.join("\n")}`);
    assert.equal(r.backendName, "noble");
    assert.equal(r.asyncPrimitivesFaster, true);
    assert.deepEqual(r.mismatches, []);
    // The self-test's two, then at least the cases whose keys Web Crypto may judge (the
    // mixed-order and malformed ones go to noble): Chromium's engine was used.
    assert.ok(r.webVerifies >= 2 + 48, `Web Crypto verified ${r.webVerifies} times`);
    assert.ok(r.cases > 100);
    assert.deepEqual(r.megolmMismatches, []);
    assert.ok(r.megolmChecked >= 80);
    assert.ok(
      r.megolmOutcomes.includes("ok") && r.megolmOutcomes.includes("BAD_SIGNATURE"),
      r.megolmOutcomes.join(),
    );
    assert.deepEqual(errors, []);
  });
});
