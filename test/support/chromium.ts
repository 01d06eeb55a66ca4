// Debian's Chromium driven by playwright-core (Playwright's own browser download is not used), for
// the tests that run Keyroom in a real browser. Screenshots go under test-output/ (gitignored).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

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
