// Two tabs of the web chat (examples/web) on one account in Debian's Chromium: one device, one
// IndexedDB crypto store, shared through its lease (a Web Lock per unit of work, the generation in
// the database, a BroadcastChannel telling the other tab to reload). Both tabs send, alternately,
// and a Node client decrypts every message (a reused Megolm index would be refused as a replay);
// then the Node client sends a burst while both tabs long-poll the same position, so one tab often
// handles a range (and the next) before the other gets the lease (src/client/sync/loop.ts catches
// up). Both tabs show every message, the other tab's and the Node client's, once, decrypted.
// Screenshots: test-output/browser/two-tabs-*.png (two-tabs-failure-* when it fails).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startWebExample, type WebExample } from "../../examples/web/serve.ts";
import { MatrixClient, type RoomEvent } from "../../src/index.ts";
import { scaledMs, withinBudget } from "../support/budget.ts";
import {
  collectPageErrors,
  launchPersistent,
  screenshot,
  skipReasonForChromium,
} from "../support/chromium.ts";

const skip = skipReasonForChromium();
/** What one step (a page showing something, Bob getting a message) needs on an idle machine. */
const STEP_MS = 60_000;

describe("two tabs on one account (Chromium)", { skip, timeout: scaledMs(600_000) }, () => {
  let web: WebExample;
  let dir: string;
  let context: BrowserContext;
  let bob: MatrixClient;
  const tabs: { page: Page; name: string; errors: string[] }[] = [];
  const received = new Map<string, RoomEvent>();

  async function tab(name: string): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(scaledMs(STEP_MS));
    tabs.push({ page, name, errors: collectPageErrors(page) });
    await page.goto(web.url);
    return page;
  }

  /** Bob's copy of the message `body` (decrypted or not), once it has arrived. */
  async function bobGets(body: string): Promise<RoomEvent> {
    const arrived = (async () => {
      for (;;) {
        const got = received.get(body);
        if (got !== undefined) return got;
        await new Promise<void>((resolve) => {
          const off = bob.on("room.event", () => {
            off();
            resolve();
          });
        });
      }
    })();
    return withinBudget(arrived, STEP_MS, (ms) => new Error(`Bob did not get "${body}" in ${ms} ms`));
  }

  /** Waits until `page` shows `text`, then checks it shows it once. */
  async function showsOnce(page: Page, name: string, text: string): Promise<void> {
    const items = page.locator("#timeline li.msg", { hasText: text });
    try {
      await items.first().waitFor();
    } catch (e) {
      const shown = await page.locator("#timeline li.msg").allTextContents();
      throw new Error(`${name} does not show "${text}"; it shows: ${JSON.stringify(shown)}`, { cause: e });
    }
    assert.equal(await items.count(), 1, `${name} shows "${text}" once`);
  }

  before(async () => {
    web = await startWebExample({ port: 0, homeserverPort: 0 });
    dir = await mkdtemp(join(tmpdir(), "keyroom-two-tabs-"));
    bob = new MatrixClient({
      homeserverUrl: web.homeserverUrl,
      encryption: { store: { directory: join(dir, "bob") } },
    });
    await bob.register({ username: `bob${Date.now().toString(36)}`, password: "bob's password" });
    bob.on("room.invite", (room) => void bob.joinRoom(room.roomId));
    bob.on("room.event", (_room, event) => {
      if (event.type === "m.room.message" && typeof event.content.body === "string")
        received.set(event.content.body, event);
    });
    await bob.startSync();
    context = await launchPersistent(join(dir, "chromium-profile"));
  });

  after(async () => {
    await context?.close();
    await bob?.close();
    await web?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("both tabs send and decrypt, as one device, and show every message once", async () => {
    try {
      await bothTabs();
    } catch (e) {
      const shots = await Promise.all(
        tabs.map(({ page, name }) => screenshot(page, `two-tabs-failure-${name}`).catch(() => name)),
      );
      const pageErrors = tabs.flatMap((t) => t.errors);
      if (pageErrors.length > 0) console.log(`page errors:\n${pageErrors.join("\n")}`);
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(`${message} (screenshots: ${shots.join(", ")})`, { cause: e });
    }
  });

  async function bothTabs(): Promise<void> {
    const one = await tab("tab-one");
    await one.fill("input[name=username]", `alice${Date.now().toString(36)}`);
    await one.fill("input[name=password]", "alice's password");
    await one.click("button[value=register]");
    await one.waitForSelector("body[data-ready=true]");
    const device = (await one.textContent("#whoami"))?.split(" · ")[1] ?? "";
    assert.notEqual(device, "");
    const joined = new Promise<string>((resolve) => {
      const off = bob.on("room.myMembership", (room, membership) => {
        if (membership !== "join") return;
        off();
        resolve(room.roomId);
      });
    });
    await one.fill("#create-room input[name=name]", "Two tabs");
    await one.fill("#create-room input[name=invite]", bob.userId);
    await one.click("#create-room button");
    const roomId = await withinBudget(joined, STEP_MS, (ms) => new Error(`Bob did not join in ${ms} ms`));
    await one.waitForSelector("#room-badge:has-text('encrypted')");

    // The second tab resumes the same session from IndexedDB and opens the same room.
    const two = await tab("tab-two");
    await two.waitForSelector("body[data-ready=true]");
    assert.equal((await two.textContent("#whoami"))?.split(" · ")[1], device, "one device, two tabs");
    await two.waitForSelector("#room-badge:has-text('encrypted')");

    // Alternate senders: each tab takes the lease, reloads what the other wrote, and sends.
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [page, name] = i % 2 === 0 ? [one, "tab one"] : [two, "tab two"];
      const body = `from ${name} #${i}`;
      await page.fill("#message", body);
      await page.click("#composer button[type=submit]");
      const seen = await bobGets(body);
      assert.equal(seen.raw.type, "m.room.encrypted");
      assert.ok(seen.encryption?.decrypted, `${body} does not decrypt at Bob`);
      assert.equal(seen.encryption.senderDeviceId, device);
      sent.push(body);
    }
    // Bob's burst, right after the last tab message: both tabs are at the same position, and the
    // first to get the lease often handles two ranges before the other handles its first.
    for (let i = 0; i < 3; i++) {
      const body = `to both tabs #${i}`;
      await bob.sendText(roomId, body);
      sent.push(body);
    }
    for (const [page, name] of [
      [one, "tab one"],
      [two, "tab two"],
    ] as const) {
      for (const body of sent) await showsOnce(page, name, body);
      const undecrypted = await page.locator('#timeline li.msg[data-trust="undecryptable"]').count();
      assert.equal(undecrypted, 0, `${name} shows undecryptable messages`);
      await screenshot(page, `two-tabs-${name.replace(" ", "-")}`);
    }
    assert.deepEqual(
      tabs.flatMap((t) => t.errors),
      [],
    );
  }
});
