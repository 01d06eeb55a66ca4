// Keyroom off the main thread in Chromium: a whole client in a dedicated worker talks with a Node
// client in an encrypted room both ways; and the web chat's service worker (examples/web/sw.ts)
// decrypts the event a push notification names, from the stores the open tab uses.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { startWebExample, type WebExample } from "../../examples/web/serve.ts";
import { MatrixClient, type RoomEvent } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import { collectPageErrors, launchChromium, skipReasonForChromium } from "../support/chromium.ts";

const skip = skipReasonForChromium();
const WAIT_MS = 60_000;
const fixture = new URL("./fixtures/worker-client.ts", import.meta.url).pathname;

function nextMessage(client: MatrixClient, roomId: string, body: string): Promise<RoomEvent> {
  return new Promise((resolve) => {
    const off = client.on("room.event", (_room, event) => {
      if (event.roomId !== roomId || event.content.body !== body) return;
      off();
      resolve(event);
    });
  });
}

describe("Keyroom in workers (Chromium)", { skip, timeout: scaledMs(300_000) }, () => {
  let web: WebExample;
  let browser: Browser;
  let bob: MatrixClient;
  let dir: string;

  before(async () => {
    web = await startWebExample({ port: 0, homeserverPort: 0, scripts: { "/worker.js": fixture } });
    browser = await launchChromium();
    dir = await mkdtemp(join(tmpdir(), "keyroom-workers-"));
    bob = new MatrixClient({
      homeserverUrl: web.homeserverUrl,
      encryption: { store: { directory: join(dir, "bob") } },
    });
    await bob.register({ username: `bob${Date.now().toString(36)}`, password: "bob's password" });
    bob.on("room.invite", (room) => void bob.joinRoom(room.roomId));
    await bob.startSync();
  });

  after(async () => {
    await browser?.close();
    await bob?.close();
    await web?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a client in a dedicated worker decrypts and sends in an encrypted room", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(scaledMs(WAIT_MS));
    const errors = collectPageErrors(page);
    const fromWorker: { type: string; [k: string]: unknown }[] = [];
    let notify = (): void => {};
    await page.exposeFunction("report", (m: { type: string }) => {
      fromWorker.push(m);
      notify();
    });
    const waitFor = (pred: (m: { type: string; [k: string]: unknown }) => boolean) =>
      new Promise<{ type: string; [k: string]: unknown }>((resolve) => {
        const check = () => {
          const found = fromWorker.find(pred);
          if (found !== undefined) resolve(found);
        };
        const prev = notify;
        notify = () => {
          prev();
          check();
        };
        check();
      });
    // The page runs the web chat, which shares the default session store with the worker: when
    // its start-up reads that store after the worker registered, it opens the same account (and
    // the crypto store the worker is creating) as a second tab would. Whether it does depends on
    // timing; idb-store-specific.test.ts creates one store from two contexts deterministically.
    await page.goto(web.url);
    await page.evaluate(
      ({ homeserverUrl, username }) => {
        const w = new Worker("worker.js", { type: "module" });
        (globalThis as unknown as { keyroomWorker: Worker }).keyroomWorker = w;
        w.onmessage = (e) => (globalThis as unknown as { report(m: unknown): void }).report(e.data);
        w.postMessage({ type: "start", homeserverUrl, username });
      },
      { homeserverUrl: web.homeserverUrl, username: `worker${Date.now().toString(36)}` },
    );
    const ready = await Promise.race([
      waitFor((m) => m.type === "ready"),
      waitFor((m) => m.type === "error"),
    ]);
    assert.equal(ready.type, "ready", JSON.stringify(ready));
    const workerUser = String(ready.userId);

    const roomId = await bob.createRoom({ name: "Worker room", invite: [workerUser], encrypted: true });
    const members = new Promise<void>((resolve) => {
      const check = () => {
        if (bob.getRoom(roomId)?.joinedMemberIds.includes(workerUser)) resolve();
      };
      bob.on("room.member", check);
      check();
    });
    await members;
    await bob.sendText(roomId, "To the worker");
    const got = await waitFor((m) => m.type === "message" && m.body === "To the worker");
    assert.equal(got.decrypted, true);

    const back = nextMessage(bob, roomId, "From the worker");
    await page.evaluate(
      (roomId) =>
        (globalThis as unknown as { keyroomWorker: Worker }).keyroomWorker.postMessage({
          type: "send",
          roomId,
          text: "From the worker",
        }),
      roomId,
    );
    const seen = await back;
    assert.equal(seen.raw.type, "m.room.encrypted");
    assert.ok(seen.encryption?.decrypted);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      fromWorker.filter((m) => m.type === "error"),
      [],
    );
    await context.close();
  });

  it("the web chat's service worker decrypts a notified event while the tab is open, and with no tab open", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(scaledMs(WAIT_MS));
    const errors = collectPageErrors(page);
    await page.goto(web.url);
    await page.fill("input[name=username]", `carol${Date.now().toString(36)}`);
    await page.fill("input[name=password]", "carol's password");
    await page.click("button[value=register]");
    await page.waitForSelector("body[data-ready=true]");
    const joined = new Promise<string>((resolve) => {
      const off = bob.on("room.myMembership", (room, membership) => {
        if (membership !== "join" || room.name !== "Notified") return;
        off();
        resolve(room.roomId);
      });
    });
    await page.fill("#create-room input[name=name]", "Notified");
    await page.fill("#create-room input[name=invite]", bob.userId);
    await page.click("#create-room button");
    const roomId = await joined;
    const eventId = await bob.sendText(roomId, "Shown in a notification");
    await page.locator("#timeline li.msg", { hasText: "Shown in a notification" }).waitFor();

    const notice = await page.evaluate(
      async ({ roomId, eventId }) => {
        const registration = await navigator.serviceWorker.ready;
        return new Promise<unknown>((resolve) => {
          navigator.serviceWorker.addEventListener("message", (e) => resolve(e.data), { once: true });
          registration.active?.postMessage({ room_id: roomId, event_id: eventId });
        });
      },
      { roomId, eventId },
    );
    assert.deepEqual(notice, {
      eventId,
      sender: bob.userId,
      body: "Shown in a notification",
      decrypted: true,
    });
    // The tab goes on working beside the service worker.
    await bob.sendText(roomId, "After the notification");
    await page.locator("#timeline li.msg", { hasText: "After the notification" }).waitFor();
    assert.deepEqual(errors, []);

    // No tab open, and a message under a new room key: the key waits in a to-device message nobody
    // synced. The service worker syncs once from the shared position and decrypts it. It is asked
    // from a page of the origin that runs no client (the bundled service worker's own URL).
    await page.close();
    await bob.crypto.machine.discardRoomKey(roomId);
    const unseen = await bob.sendText(roomId, "Sent while no tab was open");
    const bare = await context.newPage();
    bare.setDefaultTimeout(scaledMs(WAIT_MS));
    await bare.goto(`${web.url}/sw.js`);
    const late = await bare.evaluate(
      async ({ roomId, eventId }) => {
        const registration = await navigator.serviceWorker.ready;
        return new Promise<unknown>((resolve) => {
          navigator.serviceWorker.addEventListener("message", (e) => resolve(e.data), { once: true });
          registration.active?.postMessage({ room_id: roomId, event_id: eventId });
        });
      },
      { roomId, eventId: unseen },
    );
    assert.deepEqual(late, {
      eventId: unseen,
      sender: bob.userId,
      body: "Sent while no tab was open",
      decrypted: true,
    });
    // The tab opened again carries on from the position the service worker moved: it shows the
    // message, and the next one.
    const again = await context.newPage();
    again.setDefaultTimeout(scaledMs(WAIT_MS));
    const againErrors = collectPageErrors(again);
    await again.goto(web.url);
    await again.waitForSelector("body[data-ready=true]");
    await bob.sendText(roomId, "After the tab came back");
    await again.locator("#timeline li.msg", { hasText: "After the tab came back" }).waitFor();
    assert.deepEqual(againErrors, []);
    await context.close();
  });
});
