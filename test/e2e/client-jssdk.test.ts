// Interop: Keyroom's client and matrix-js-sdk 43 (no crypto) in the same plain room on the
// devserver. Messages, HTML, replies, edits and reactions sent by one appear correctly in the other.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as nodeSetTimeout } from "node:timers";
import { MatrixClient, type RoomEvent } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

// matrix-js-sdk 43 calls Promise.withResolvers, which Node 20 lacks.
if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value<T>() {
      let resolve!: (v: T | PromiseLike<T>) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

// js-sdk arms a timer per request (80 s for a sync) and never clears it; unref the long ones so they
// do not hold this test process open after the last test.
globalThis.setTimeout = ((fn: () => void, ms?: number, ...args: unknown[]) => {
  // A Node Timeout at run time; the DOM lib types it as a number.
  const t = nodeSetTimeout(fn, ms, ...args) as unknown as { unref(): unknown };
  if ((ms ?? 0) >= 5_000) t.unref();
  return t;
}) as unknown as typeof setTimeout;

const loglevel = (await import("loglevel")).default;
loglevel.setDefaultLevel("silent");
const sdk = await import("matrix-js-sdk");
// Child loggers copy their level when created: silence the root and every logger made at import.
loglevel.setLevel("silent");
for (const l of Object.values(loglevel.getLoggers())) l.setLevel("silent");
type JsClient = ReturnType<typeof sdk.createClient>;
type JsEvent = InstanceType<typeof sdk.MatrixEvent>;

function waitForJsEvent(client: JsClient, roomId: string, pred: (ev: JsEvent) => boolean): Promise<JsEvent> {
  return new Promise((resolve) => {
    const check = (ev: JsEvent) => {
      if (ev.getRoomId() === roomId && pred(ev)) resolve(ev);
    };
    client.on(sdk.RoomEvent.Timeline, (ev) => check(ev));
    for (const ev of client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []) check(ev);
  });
}

describe("Keyroom client and matrix-js-sdk in one room", { timeout: scaledMs(60_000) }, () => {
  let hs: TestDevServer;
  let kr: MatrixClient;
  let js: JsClient;
  let roomId: string;

  before(async () => {
    hs = await startTestDevServer();
    kr = new MatrixClient({ homeserverUrl: hs.baseUrl, syncTimeoutMs: 1000 });
    await kr.register({ username: "kr", password: "pw" });
    const jsUser = await hs.register("jsuser");
    js = sdk.createClient({
      baseUrl: hs.baseUrl,
      userId: jsUser.userId,
      accessToken: jsUser.accessToken,
      deviceId: jsUser.deviceId,
    });
    const prepared = new Promise<void>((resolve) => {
      js.on(sdk.ClientEvent.Sync, (state) => {
        if (state === "PREPARED") resolve();
      });
    });
    await js.startClient({ initialSyncLimit: 20 });
    await prepared;
    roomId = await kr.createRoom({ name: "interop", encrypted: false, invite: [jsUser.userId] });
    await js.joinRoom(roomId);
    await kr.startSync();
  });

  after(async () => {
    // Abort js-sdk's in-flight requests while the server is still up: one that failed on a closed
    // port would be retried for half a minute.
    js?.stopClient();
    js?.http.abort();
    await kr?.close();
    await hs?.close();
  });

  it("js-sdk sees Keyroom's text, HTML, reply, edit and reaction", async () => {
    const text = await kr.sendText(roomId, "hello from keyroom");
    await kr.sendHtml(roomId, "<em>rich</em> text");
    await kr.sendText(roomId, "a reply", { replyTo: text });
    await kr.editMessage(roomId, text, "hello (edited)");
    await kr.react(roomId, text, "🎉");

    const html = await waitForJsEvent(
      js,
      roomId,
      (ev) => ev.getContent().formatted_body === "<em>rich</em> text",
    );
    assert.equal(html.getContent().body, "rich text");
    assert.equal(html.getSender(), kr.userId);
    const reply = await waitForJsEvent(js, roomId, (ev) => ev.getContent().body === "a reply");
    assert.equal(reply.replyEventId, text);
    const edit = await waitForJsEvent(js, roomId, (ev) => ev.isRelation("m.replace"));
    assert.equal(edit.getRelation()?.event_id, text);
    assert.equal(edit.getContent()["m.new_content"]?.body, "hello (edited)");
    const reaction = await waitForJsEvent(js, roomId, (ev) => ev.getType() === "m.reaction");
    assert.equal(reaction.getRelation()?.key, "🎉");
    assert.equal(reaction.getRelation()?.event_id, text);
  });

  it("Keyroom sees js-sdk's messages, in order, with relations intact", async () => {
    const got: RoomEvent[] = [];
    let done: () => void = () => {};
    const all = new Promise<void>((r) => {
      done = r;
    });
    kr.on("room.event", (room, ev) => {
      if (room.roomId !== roomId || ev.sender === kr.userId) return;
      got.push(ev);
      if (ev.type === "m.reaction") done();
    });
    const first = await js.sendTextMessage(roomId, "hi from js-sdk");
    await js.sendHtmlMessage(roomId, "plain", "<strong>plain</strong>");
    await js.sendEvent(roomId, sdk.EventType.Reaction, {
      "m.relates_to": { rel_type: sdk.RelationType.Annotation, event_id: first.event_id, key: "👍" },
    });
    await all;
    const messages = got.filter((e) => e.type === "m.room.message");
    assert.deepEqual(
      messages.map((e) => e.content.body),
      ["hi from js-sdk", "plain"],
    );
    assert.equal(messages[1]?.content.formatted_body, "<strong>plain</strong>");
    assert.equal(messages[0]?.eventId, first.event_id);
    const reaction = got.find((e) => e.type === "m.reaction");
    assert.deepEqual(reaction?.content["m.relates_to"], {
      rel_type: "m.annotation",
      event_id: first.event_id,
      key: "👍",
    });
    assert.equal(kr.getRoom(roomId)?.getMember(js.getUserId()!)?.membership, "join");
  });
});
