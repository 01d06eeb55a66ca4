// Debian's Chromium driven by playwright-core (Playwright's own browser download is not used), for
// the tests that run Keyroom in a real browser. Screenshots go under test-output/ (gitignored).
import { existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { bundleForBrowser } from "./browser-bundle.ts";

export const CHROMIUM = process.env.KEYROOM_CHROMIUM ?? "/usr/bin/chromium";

/** Where browser tests save screenshots. */
export const TEST_OUTPUT = join(new URL("../..", import.meta.url).pathname, "test-output", "browser");

/** The loud line a browser test prints when Chromium is missing; undefined when it is there. */
export function skipReasonForChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const reason = `SKIPPED: Chromium tests (no ${CHROMIUM}; apt-get install chromium)`;
  console.log(`\n${"!".repeat(reason.length)}\n${reason}\n${"!".repeat(reason.length)}\n`);
  return reason;
}

const ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/**
 * A browser on a profile directory of its own: closing it and launching again on the same directory
 * is a browser restart (IndexedDB survives, as on a user's machine).
 */
export function launchPersistent(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
  });
}

/** Saves a screenshot of `page` as test-output/browser/NAME.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(TEST_OUTPUT, { recursive: true });
  const path = join(TEST_OUTPUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Page errors and console errors, collected so a test can show them when it fails. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("response", (r) => {
    // A homeserver's 4xx is a protocol answer (e.g. 404: no key backup), not a page error.
    if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith("/_matrix/"))
      errors.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.on("console", (m) => {
    // Failed loads are reported above with their URL.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      errors.push(`console: ${m.text()}`);
    }
  });
  return errors;
}

/** A fixture module served as a page's only script, and a Chromium to open it in. */
export interface FixturePage {
  /**
   * Opens the page and waits (up to `timeoutMs`) for the fixture to publish its result as
   * `globalThis[name]`; the page's errors are collected until the test ends.
   */
  result<T>(name: string, timeoutMs: number): Promise<{ result: T; errors: string[] }>;
  close(): Promise<void>;
}

/** Bundles `fixture` (a module's path) for the browser, serves it on a local port and launches Chromium. */
export async function openFixturePage(fixture: string): Promise<FixturePage> {
  const script = (await bundleForBrowser({ entry: fixture })).bytes;
  const server = createServer((req, res) => {
    if (req.url === "/page.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" }).end(script);
    } else {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end('<!doctype html><script type="module" src="/page.js"></script>');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (e) {
    server.close();
    throw e;
  }
  return {
    async result<T>(name: string, timeoutMs: number) {
      const page = await browser.newPage();
      const errors = collectPageErrors(page);
      await page.goto(url);
      const handle = await page.waitForFunction((n) => (globalThis as Record<string, unknown>)[n], name, {
        timeout: timeoutMs,
      });
      return { result: (await handle.jsonValue()) as T, errors };
    },
    async close() {
      await browser.close();
      server.close();
    },
  };
}
