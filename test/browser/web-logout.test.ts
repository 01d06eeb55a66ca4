// The web chat's "Log out" in Debian's Chromium: the server deletes the device, so its keys are of
// no further use; they must not stay in the browser (the crypto store would still open with the
// Web Crypto key kept beside it), and logging in again must work (a new device, a new store).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { startWebExample, type WebExample } from "../../examples/web/serve.ts";
import { MatrixClient } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import { collectPageErrors, launchChromium, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();
const WAIT_MS = 60_000;

describe("web chat log out in Chromium", { skip, timeout: scaledMs(300_000) }, () => {
  let web: WebExample;
  let browser: Browser;
  let page: Page;
  let errors: string[] = [];
  const username = `carol${Date.now().toString(36)}`;
  const password = "carol's password";

  const databases = (): Promise<string[]> =>
    page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name ?? ""));

  /** Logs in with the password on the login form; returns the new device's ID. */
  async function logInAgain(): Promise<string> {
    await page.fill("input[name=username]", username);
    await page.fill("input[name=password]", password);
    await page.click("button[value=login]");
    const outcome = await Promise.race([
      page.waitForSelector("body[data-ready=true]").then(() => "ready"),
      page
        .waitForSelector("#login-error:not(:empty)")
        .then(async () => await page.textContent("#login-error")),
    ]);
    assert.equal(outcome, "ready", `logging in again failed: ${outcome}`);
    const device = (await page.textContent("#whoami"))?.split(" · ")[1];
    assert.ok(device);
    return device;
  }

  before(async () => {
    web = await startWebExample({ port: 0, homeserverPort: 0 });
    browser = await launchChromium();
    page = await browser.newPage();
    page.setDefaultTimeout(scaledMs(WAIT_MS));
    errors = collectPageErrors(page);
    await page.goto(web.url);
  });

  after(async () => {
    if (errors.length > 0) console.log(errors.join("\n"));
    await browser?.close();
    await web?.close();
  });

  it("deletes the device's crypto store, and logging in again gives a new device", async () => {
    await page.fill("input[name=username]", username);
    await page.fill("input[name=password]", password);
    await page.click("button[value=register]");
    await page.waitForSelector("body[data-ready=true]");
    const [userId, firstDevice] = (await page.textContent("#whoami"))?.split(" · ") ?? [];
    assert.ok(userId?.startsWith("@") && firstDevice);
    assert.ok((await databases()).includes(`keyroom-crypto:${userId}`));

    await Promise.all([page.waitForEvent("load"), page.click("#logout")]);
    await page.waitForSelector("#login:not([hidden])");
    assert.ok(
      !(await databases()).includes(`keyroom-crypto:${userId}`),
      "the logged-out device's keys stay in IndexedDB",
    );

    assert.notEqual(await logInAgain(), firstDevice);
    assert.deepEqual(errors, []);
  });

  it("after the server ended the session (its token revoked elsewhere), Log out still returns to the login form", async () => {
    const [userId] = (await page.textContent("#whoami"))?.split(" · ") ?? [];
    const storedSession = () =>
      page.evaluate(
        () =>
          new Promise<{ accessToken?: string } | undefined>((resolve, reject) => {
            const open = indexedDB.open("keyroom-session");
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
              const get = open.result.transaction("session").objectStore("session").get("1");
              get.onsuccess = () => {
                open.result.close();
                resolve(get.result);
              };
            };
          }),
      );
    const token = (await storedSession())?.accessToken;
    assert.ok(token);
    const res = await fetch(`${web.homeserverUrl}/_matrix/client/v3/logout`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    // Wakes the page's long-poll; the request after it is refused, and the page forgets its session.
    const other = new MatrixClient({ homeserverUrl: web.homeserverUrl });
    await other.register({ username: `dan${Date.now().toString(36)}`, password: "dan's password" });
    await other.createRoom({ invite: [userId ?? ""] });
    await page.waitForFunction(
      () =>
        new Promise<boolean>((resolve) => {
          const open = indexedDB.open("keyroom-session");
          open.onsuccess = () => {
            const get = open.result.transaction("session").objectStore("session").get("1");
            get.onsuccess = () => {
              open.result.close();
              resolve(get.result === undefined);
            };
          };
        }),
    );
    await other.close();
    await Promise.all([page.waitForEvent("load"), page.click("#logout")]);
    await page.waitForSelector("#login:not([hidden])");
    assert.ok(!(await databases()).includes(`keyroom-crypto:${userId}`));
    await logInAgain();
  });
});
