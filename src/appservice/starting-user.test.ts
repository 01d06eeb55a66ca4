// A virtual user started while the appservice runs: its device has its keys on the server as soon
// as its client is restored, before the rest of its start (key counts, catching up), so others can
// already send it a room key. A transaction carrying that key while the user is still starting must
// not lose it: once started, the user reads the room's message.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type DevServer, startDevServer } from "../devserver/index.ts";
import type { Registration } from "../wire/appservice.ts";
import { Appservice } from "./appservice.ts";
import { generateRegistration } from "./registration.ts";
import { type AppserviceListener, listenAppservice } from "./server.ts";
import type { Transaction } from "./transaction.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const NEW_USER = "@v_new:localhost";

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

describe("a virtual user that is starting when its to-device messages arrive", () => {
  let server: DevServer;
  let listener: AppserviceListener;
  let as: Appservice | undefined;
  let reg: Registration;
  const handled = waiter();
  /** To-device messages for the new user in transactions the appservice handled. */
  let toNewUser = 0;
  /** Holds the new user's start after its client is restored (its device keys are up by then). */
  let releaseStart: () => void = () => {};
  const startHeld = new Promise<void>((resolve) => {
    releaseStart = resolve;
  });
  let keysUp: () => void = () => {};
  /** The new user's device keys are on the server (uploaded while its client is restored). */
  const deviceKeysUp = new Promise<void>((resolve) => {
    keysUp = resolve;
  });

  before(async () => {
    reg = generateRegistration({
      id: "starting",
      url: null,
      senderLocalpart: "startingbot",
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
          toNewUser += txn.toDevice.filter((m) => m.to_user_id === NEW_USER).length;
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

  it("keeps a room key sent to it while it starts: once started, it decrypts the message", async () => {
    const started = new Appservice({
      registration: reg,
      homeserverUrl: server.baseUrl,
      clientOptions: { fillTimelineGaps: false },
      fetch: async (input, init) => {
        const url = new URL(input);
        const forNewUser = url.searchParams.get("user_id") === NEW_USER;
        const upload = url.pathname.endsWith("/keys/upload") && init.method === "POST";
        // The empty upload that reads the key counts comes after the client is restored.
        if (forNewUser && upload && init.body === "{}") await startHeld;
        const res = await fetch(input, init);
        if (forNewUser && upload && String(init.body).includes("device_keys")) keysUp();
        return res;
      },
    });
    await started.start();
    as = started;
    const ann = await started.user("v_ann");
    const starting = started.user("v_new");
    // Its device keys are on the server: anyone may send it a room key from now on.
    await deviceKeysUp;
    const roomId = await ann.createRoom({ encrypted: true, invite: [NEW_USER] });
    // It joins (the appservice acts as it, no device needed), and Ann sees the join.
    const join = await fetch(
      `${server.baseUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}?user_id=${encodeURIComponent(NEW_USER)}`,
      { method: "POST", headers: { Authorization: `Bearer ${reg.as_token}` }, body: "{}" },
    );
    assert.equal(join.status, 200);
    await handled.until(() => ann.getRoom(roomId)?.getMember(NEW_USER)?.membership === "join");
    const eventId = await ann.sendText(roomId, "for the new one");
    await handled.until(() => toNewUser > 0);

    releaseStart();
    const client = await starting;
    const ev = await client.fetchEvent(roomId, eventId);
    assert.equal(ev.encryption?.decrypted, true, "the room key sent while it started was kept");
    assert.equal(ev.content.body, "for the new one");
  });
});
