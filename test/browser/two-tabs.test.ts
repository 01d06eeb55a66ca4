// Two tabs of the web chat on one account (one device, one IndexedDB crypto store shared through its
// lease): both send, and a Node client decrypts both; what the Node client sends is shown decrypted
// in both tabs.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { startWebExample, type WebExample } from "../../examples/web/serve.ts";
import { MatrixClient, type RoomEvent } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import { collectPageErrors, launchPersistent, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();

function nextMessage(client: MatrixClient, roomId: string, body: string): Promise<RoomEvent> {
  return new Promise((resolve) => {
    const off = client.on("room.event", (_room, event) => {
      if (event.roomId !== roomId || event.content.body !== body) return;
      off();
      resolve(event);
    });
  });
}

describe("two tabs on one account (Chromium)", { skip, timeout: scaledMs(300_000) }, () => {
  let web: WebExample;
  let dir: string;
  let context: BrowserContext;
  let bob: MatrixClient;
  const errors: string[][] = [];

  async function tab(): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(scaledMs(60_000));
    errors.push(collectPageErrors(page));
    await page.goto(web.url);
    return page;
  }

  before(async () => {
    web = await startWebExample({ port: 0, homeserverPort: 0 });
    dir = await mkdtemp(join(tmpdir(), "keyroom-tabs-"));
    bob = new MatrixClient({
      homeserverUrl: web.homeserverUrl,
      encryption: { store: { directory: join(dir, "bob") } },
    });
    await bob.register({ username: `bob${Date.now().toString(36)}`, password: "bob's password" });
    bob.on("room.invite", (room) => void bob.joinRoom(room.roomId));
    await bob.startSync();
    context = await launchPersistent(join(dir, "profile"));
  });

  after(async () => {
    await context?.close();
    await bob?.close();
    await web?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("both tabs send and decrypt", async () => {
    const first = await tab();
    await first.fill("input[name=username]", `dana${Date.now().toString(36)}`);
    await first.fill("input[name=password]", "dana's password");
    await first.click("button[value=register]");
    await first.waitForSelector("body[data-ready=true]");
    const joined = new Promise<string>((resolve) => {
      const off = bob.on("room.myMembership", (room, membership) => {
        if (membership !== "join") return;
        off();
        resolve(room.roomId);
      });
    });
    await first.fill("#create-room input[name=name]", "Two tabs");
    await first.fill("#create-room input[name=invite]", bob.userId);
    await first.click("#create-room button");
    const roomId = await joined;

    const second = await tab();
    await second.waitForSelector("body[data-ready=true]");
    assert.equal(
      await second.textContent("#whoami"),
      await first.textContent("#whoami"),
      "same user and device",
    );

    for (const [page, text] of [
      [first, "From the first tab"],
      [second, "From the second tab"],
      [first, "The first tab again"],
    ] as const) {
      const seen = nextMessage(bob, roomId, text);
      await page.fill("#message", text);
      await page.press("#message", "Enter");
      const event = await seen;
      assert.equal(event.raw.type, "m.room.encrypted");
      assert.ok(event.encryption?.decrypted, text);
    }

    await bob.sendText(roomId, "To both tabs");
    for (const page of [first, second]) {
      await page.locator("#timeline li.msg", { hasText: "To both tabs" }).waitFor();
    }
    assert.deepEqual(errors.flat(), []);
  });
});
