// The web chat (examples/web) in Debian's Chromium, driven as a person would: register, create an
// encrypted room, type and click, see a Node client's messages decrypted, send and open encrypted
// files, verify the Node client's device with emoji; then a reload and a full browser restart (same
// profile directory) keep the device and its keys. Screenshots: test-output/browser/web-chat-*.png.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startWebExample, type WebExample } from "../../examples/web/serve.ts";
import { MatrixClient, type RoomEvent, type VerificationRequest } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import {
  collectPageErrors,
  launchPersistent,
  screenshot,
  skipReasonForChromium,
} from "../support/chromium.ts";

const skip = skipReasonForChromium();
const WAIT_MS = 60_000;

/** The next message event in `roomId` that `match` accepts, as `client` sees it. */
function nextMessage(
  client: MatrixClient,
  roomId: string,
  match: (e: RoomEvent) => boolean = () => true,
): Promise<RoomEvent> {
  return new Promise((resolve) => {
    const off = client.on("room.event", (_room, event) => {
      if (event.roomId !== roomId || event.type !== "m.room.message" || !match(event)) return;
      off();
      resolve(event);
    });
  });
}

describe("web chat in Chromium", { skip, timeout: scaledMs(600_000) }, () => {
  let web: WebExample;
  let dir: string;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let errors: string[] = [];
  let bob: MatrixClient;
  let roomId: string;
  let browserDevice: string;
  const username = `alice${Date.now().toString(36)}`;

  async function openPage(): Promise<void> {
    context = await launchPersistent(profile);
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(scaledMs(WAIT_MS));
    errors = collectPageErrors(page);
    await page.goto(web.url);
  }

  /** The timeline entry showing `text`, once it is there. */
  async function message(text: string) {
    const entry = page.locator("#timeline li.msg", { hasText: text });
    try {
      await entry.waitFor();
    } catch (e) {
      const shot = await screenshot(page, "web-chat-failure");
      const shown = await page.locator("#timeline li.msg").allTextContents();
      throw new Error(`"${text}" not in the timeline (${shot}); it shows: ${JSON.stringify(shown)}`, {
        cause: e,
      });
    }
    return entry;
  }

  before(async () => {
    web = await startWebExample({ port: 0, homeserverPort: 0 });
    dir = await mkdtemp(join(tmpdir(), "keyroom-web-"));
    profile = join(dir, "chromium-profile");
    bob = new MatrixClient({
      homeserverUrl: web.homeserverUrl,
      encryption: { store: { directory: join(dir, "bob") } },
    });
    await bob.register({ username: `bob${Date.now().toString(36)}`, password: "bob's password" });
    bob.on("room.invite", (room) => void bob.joinRoom(room.roomId));
    await bob.startSync();
    await openPage();
  });

  after(async () => {
    if (errors.length > 0) console.log(errors.join("\n"));
    await context?.close();
    await bob?.close();
    await web?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("registers, creates an encrypted room and talks with a Node client both ways", async () => {
    await page.fill("input[name=username]", username);
    await page.fill("input[name=password]", "alice's password");
    await page.click("button[value=register]");
    await page.waitForSelector("body[data-ready=true]");
    browserDevice = (await page.textContent("#whoami"))?.split(" · ")[1] ?? "";
    assert.notEqual(browserDevice, "");

    const joined = new Promise<string>((resolve) => {
      const off = bob.on("room.myMembership", (room, membership) => {
        if (membership !== "join") return;
        off();
        resolve(room.roomId);
      });
    });
    await page.fill("#create-room input[name=name]", "Browser and Node");
    await page.fill("#create-room input[name=invite]", bob.userId);
    await page.click("#create-room button");
    roomId = await joined;
    await page.waitForSelector("#room-badge:has-text('encrypted')");

    const fromBrowser = nextMessage(bob, roomId);
    await page.fill("#message", "Hello from Chromium");
    await page.click("#composer button[type=submit]");
    const seen = await fromBrowser;
    assert.equal(seen.content.body, "Hello from Chromium");
    assert.equal(seen.raw.type, "m.room.encrypted");
    assert.ok(seen.encryption?.decrypted);

    await bob.sendText(roomId, "Hello from Node");
    const entry = await message("Hello from Node");
    assert.equal(await entry.getAttribute("data-trust"), "unverified");
    await screenshot(page, "web-chat-1-conversation");
  });

  it("sends and opens encrypted files", async () => {
    const fileFromBrowser = nextMessage(bob, roomId, (e) => e.content.msgtype === "m.file");
    await page.setInputFiles("#file", {
      name: "note.txt",
      mimeType: "text/plain",
      buffer: Buffer.from("a note from the browser"),
    });
    const fileEvent = await fileFromBrowser;
    assert.equal(fileEvent.content.url, undefined, "an encrypted room's file travels as content.file");
    assert.ok(typeof fileEvent.content.file === "object");
    assert.equal(
      new TextDecoder().decode(await bob.downloadAttachment(fileEvent.content)),
      "a note from the browser",
    );

    await bob.sendFile(roomId, new TextEncoder().encode("a note from Node"), {
      filename: "from-node.txt",
      contentType: "text/plain",
    });
    await (await message("from-node.txt")).locator("button").click();
    await page.waitForSelector(".file-text:has-text('a note from Node')");
    // A file claiming a type that runs script gets an inert blob (blob: URLs share the page's origin).
    await bob.sendFile(roomId, new TextEncoder().encode("<script>alert(1)</script>"), {
      filename: "page.html",
      contentType: "text/html",
    });
    await (await message("page.html")).locator("button").click();
    const saved = page.locator("a.download", { hasText: "page.html" });
    await saved.waitFor();
    assert.equal(
      await saved.evaluate(async (a) => (await (await fetch((a as HTMLAnchorElement).href)).blob()).type),
      "application/octet-stream",
    );
    await screenshot(page, "web-chat-2-files");
  });

  it("verifies the Node client's device with emoji on screen; its messages are then marked verified", async () => {
    const incoming = new Promise<VerificationRequest>((resolve) => {
      const off = bob.on("verification.request", (request) => {
        off();
        resolve(request);
      });
    });
    await page.fill("#verify-user input", bob.userId);
    await page.click("#verify-user button");
    await page.click(`#devices li[data-device-id="${bob.deviceId}"] button`);
    const request = await incoming;
    await request.accept();
    await request.waitFor((s) => s.sas?.emoji !== undefined || s.phase === "cancelled");
    const expected = (request.emoji ?? []).map((e) => e.description);
    assert.equal(expected.length, 7);
    await page.waitForSelector("#emoji li");
    const shown = await page.locator("#emoji li").allTextContents();
    assert.deepEqual(
      shown.map((t, i) => t.endsWith(expected[i] ?? "?")),
      expected.map(() => true),
      `page shows ${shown.join(", ")}, Node sees ${expected.join(", ")}`,
    );
    await screenshot(page, "web-chat-3-emoji");
    await request.confirm();
    await page.click("#verification-actions button:has-text('They match')");
    await page.waitForSelector("#verification[data-result=verified]");
    await request.finished();
    assert.equal(request.phase, "done");
    await page.click("#verification-actions button:has-text('Close')");

    await bob.sendText(roomId, "Now I am verified");
    const entry = await message("Now I am verified");
    assert.equal(await entry.getAttribute("data-trust"), "verified");
  });

  it("a reload keeps the device and its keys: history and new messages decrypt", async () => {
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    assert.equal((await page.textContent("#whoami"))?.split(" · ")[1], browserDevice);
    await page.click("#rooms li:has-text('Browser and Node')");
    await message("Hello from Node"); // history, decrypted from the keys in IndexedDB
    await bob.sendText(roomId, "After the reload");
    assert.equal(await (await message("After the reload")).getAttribute("data-trust"), "verified");
  });

  it("a browser restart on the same profile keeps them too, and sending still works", async () => {
    await context.close();
    await openPage();
    await page.waitForSelector("body[data-ready=true]");
    assert.equal((await page.textContent("#whoami"))?.split(" · ")[1], browserDevice);
    await page.click("#rooms li:has-text('Browser and Node')");
    await message("After the reload");
    await bob.sendText(roomId, "After the restart");
    await message("After the restart");
    const reply = nextMessage(bob, roomId, (e) => e.content.body === "Back after a restart");
    await page.fill("#message", "Back after a restart");
    await page.press("#message", "Enter");
    const seen = await reply;
    assert.ok(seen.encryption?.decrypted);
    assert.equal(seen.encryption.senderDeviceId, browserDevice);
    await screenshot(page, "web-chat-4-after-restart");
    assert.deepEqual(errors, []);
  });
});
