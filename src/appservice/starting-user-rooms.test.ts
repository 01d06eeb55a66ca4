// A virtual user started while the appservice runs gets transactions only once its start is over,
// but it may already be in rooms (here: it joins one) while it starts. The room events that come
// meanwhile, an encrypted message and a state change, must not be lost: once started, the user's
// handlers (put on as soon as `user()` gives the client) see them, decrypted and in order, before
// the events that come after its start.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RoomEvent } from "../client/index.ts";
import { type DevServer, startDevServer } from "../devserver/index.ts";
import type { Registration } from "../wire/appservice.ts";
import { Appservice } from "./appservice.ts";
import { generateRegistration } from "./registration.ts";
import { type AppserviceListener, listenAppservice } from "./server.ts";
import type { Transaction } from "./transaction.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const LATE = "@v_late:localhost";

/** Resolves once `pred` holds, checked after each transaction the appservice handled. */
function waiter() {
  const waiting: { pred: () => boolean; resolve: () => void }[] = [];
  return {
    until(pred: () => boolean): Promise<void> {
      if (pred()) return Promise.resolve();
      return new Promise((resolve) => waiting.push({ pred, resolve }));
    },
    check(): void {
      for (const w of [...waiting]) {
        if (!w.pred()) continue;
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    },
  };
}

describe("a virtual user that is starting when room events for it arrive", () => {
  let server: DevServer;
  let listener: AppserviceListener;
  let as: Appservice | undefined;
  let reg: Registration;
  const handled = waiter();
  /** IDs of the room events in transactions the appservice handled. */
  const inTxns = new Set<string>();
  /** Holds the new user's start after its client is restored (its device keys are up by then). */
  let releaseStart: () => void = () => {};
  const startHeld = new Promise<void>((resolve) => {
    releaseStart = resolve;
  });
  let keysUp: () => void = () => {};
  const deviceKeysUp = new Promise<void>((resolve) => {
    keysUp = resolve;
  });

  before(async () => {
    reg = generateRegistration({
      id: "startingrooms",
      url: null,
      senderLocalpart: "startingroomsbot",
      serverName: "localhost",
      userPrefix: "v_",
      encryption: true,
    });
    listener = await listenAppservice(
      { port: 0, hsToken: reg.hs_token, logger: quiet },
      {
        transaction: async (txnId: string, txn: Transaction) => {
          if (as === undefined) throw new Error("not ready");
          await as.handleTransaction(txnId, txn);
          for (const ev of txn.events) inTxns.add(ev.event_id);
          handled.check();
        },
      },
    );
    server = await startDevServer({
      port: 0,
      memory: true,
      appservices: [{ ...reg, url: listener.url }],
      appserviceRetry: { baseMs: 20, maxMs: 200 },
    });
  });
  after(async () => {
    releaseStart();
    await as?.close();
    await listener.close();
    await server.close();
  });

  it("hands it the encrypted message and the state change of its start, decrypted, in order", async () => {
    const started = new Appservice({
      registration: reg,
      homeserverUrl: server.baseUrl,
      clientOptions: { fillTimelineGaps: false },
      fetch: async (input, init) => {
        const url = new URL(input);
        const forLate = url.searchParams.get("user_id") === LATE;
        const upload = url.pathname.endsWith("/keys/upload") && init.method === "POST";
        // The empty upload that reads the key counts comes after the client is restored.
        if (forLate && upload && init.body === "{}") await startHeld;
        const res = await fetch(input, init);
        if (forLate && upload && String(init.body).includes("device_keys")) keysUp();
        return res;
      },
    });
    await started.start();
    as = started;
    const ann = await started.user("v_ann");
    const starting = started.user("v_late");
    await deviceKeysUp;
    const roomId = await ann.createRoom({ encrypted: true, invite: [LATE] });
    // It joins while it starts (the appservice acts as it, no device needed).
    const join = await fetch(
      `${server.baseUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}?user_id=${encodeURIComponent(LATE)}`,
      { method: "POST", headers: { Authorization: `Bearer ${reg.as_token}` }, body: "{}" },
    );
    assert.equal(join.status, 200);
    await handled.until(() => ann.getRoom(roomId)?.getMember(LATE)?.membership === "join");
    const topicId = await ann.sendStateEvent(roomId, "m.room.topic", "", { topic: "set while you started" });
    const messageId = await ann.sendText(roomId, "sent while you started");
    // Both came in transactions handled while the user was still starting.
    await handled.until(() => inTxns.has(topicId) && inTxns.has(messageId));

    releaseStart();
    const late = await starting;
    const seen: RoomEvent[] = [];
    let afterSeen: () => void = () => {};
    const afterArrived = new Promise<void>((resolve) => {
      afterSeen = resolve;
    });
    let afterId: string | undefined;
    late.on("room.event", (_room, ev) => {
      if (ev.roomId !== roomId) return;
      seen.push(ev);
      if (ev.eventId === afterId) afterSeen();
    });
    afterId = await ann.sendText(roomId, "sent after your start");
    if (seen.some((e) => e.eventId === afterId)) afterSeen();
    await afterArrived;

    const ids = seen.map((e) => e.eventId);
    const message = seen.find((e) => e.eventId === messageId);
    assert.ok(message, "the message sent while it started reached its handlers");
    assert.equal(message.encryption?.decrypted, true);
    assert.equal(message.type, "m.room.message");
    assert.equal(message.content.body, "sent while you started");
    const topic = seen.find((e) => e.eventId === topicId);
    assert.equal(topic?.content.topic, "set while you started", "the state change reached them too");
    assert.equal(late.getRoom(roomId)?.getState("m.room.topic", "")?.content.topic, "set while you started");
    assert.equal(late.getRoom(roomId)?.membership, "join");
    assert.ok(ids.indexOf(topicId) < ids.indexOf(messageId), "in the order they were sent");
    assert.ok(ids.indexOf(messageId) < ids.indexOf(afterId), "before what came after its start");
    assert.equal(new Set(ids).size, ids.length, "each once");
  });
});
