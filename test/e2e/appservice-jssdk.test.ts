// Appservice mode, proven against a client we did not write: a virtual user of a Keyroom
// appservice and a matrix-js-sdk user (Rust crypto) chat in an encrypted room through the
// devserver, both ways. The virtual user never calls /sync: its invite, the room's events, the
// Olm-encrypted room key (MSC2409/MSC4203 to-device), device lists and key counts (MSC3202) come
// in transactions, and it acts through the as_token with user and device masquerading.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  Appservice,
  type AppserviceListener,
  generateRegistration,
  listenAppservice,
} from "../../src/appservice/index.ts";
import { arg, Bot } from "../../src/bot/index.ts";
import { startDevServer } from "../../src/devserver/index.ts";
import type { MatrixClient, RoomEvent } from "../../src/index.ts";
import {
  closePeers,
  JsSdkPeer,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  registerPeer,
} from "../support/peers/index.ts";

function nextEvent(client: MatrixClient, pred: (ev: RoomEvent) => boolean): Promise<RoomEvent> {
  return new Promise((resolve) => {
    const off = client.on("room.event", (_room, ev) => {
      if (pred(ev)) {
        off();
        resolve(ev);
      }
    });
  });
}

describe("appservice virtual user and matrix-js-sdk in an encrypted room", {
  timeout: PEER_TEST_TIMEOUT_MS,
}, () => {
  let server: Awaited<ReturnType<typeof startDevServer>>;
  let listener: AppserviceListener;
  let appservice: Appservice | undefined;
  const peers: Peer[] = [];
  /** Every request the appservice side made: path and query. */
  const requests: URL[] = [];

  before(async () => {
    const base = generateRegistration({
      id: "bridge",
      url: null,
      senderLocalpart: "bridgebot",
      serverName: "localhost",
      userPrefix: "br_",
    });
    // The listener comes first: its URL goes into the registration the homeserver reads at start.
    // Until the appservice exists, transactions are refused and the homeserver retries them.
    listener = await listenAppservice(
      { port: 0, hsToken: base.hs_token, logger: { debug() {}, info() {}, warn() {}, error() {} } },
      {
        transaction: async (txnId, txn) => {
          if (!appservice) throw new Error("not ready");
          await appservice.handleTransaction(txnId, txn);
        },
      },
    );
    server = await startDevServer({
      port: 0,
      memory: true,
      appservices: [{ ...base, url: listener.url }],
      appserviceRetry: { baseMs: 20, maxMs: 200 },
    });
    appservice = new Appservice({
      registration: base,
      homeserverUrl: server.baseUrl,
      fetch: (input, init) => {
        requests.push(new URL(input));
        return fetch(input, init);
      },
    });
    await appservice.start();
  });
  after(async () => {
    await closePeers(peers);
    await appservice?.close();
    await listener.close();
    await server.close();
  });

  it("chats both ways, encrypted", async () => {
    const as = appservice!;
    const bob = await as.user("br_bob", { displayName: "Bob (bridged)" });
    assert.equal(bob.userId, "@br_bob:localhost");
    assert.ok(bob.isEncryptionEnabled);
    const alice = await JsSdkPeer.register(server.baseUrl, "alice", "alice-password");
    peers.push(alice);

    const invited = new Promise<string>((resolve) => {
      const off = bob.on("room.invite", (room) => {
        off();
        resolve(room.roomId);
      });
    });
    const roomId = await alice.createRoom({ encrypted: true, invite: [bob.userId] });
    assert.equal(await invited, roomId);
    await bob.joinRoom(roomId);
    await alice.waitForMembership(roomId, bob.userId, "join");
    // js-sdk must know the virtual user's device before it shares its room key with it.
    await alice.waitForDevices(bob.userId, (ids) => ids.includes(bob.deviceId));

    const fromAlice = nextEvent(bob, (ev) => ev.sender === alice.userId && ev.type === "m.room.message");
    await alice.sendText(roomId, "hello from js-sdk");
    const got = await fromAlice;
    assert.equal(got.content.body, "hello from js-sdk");
    assert.equal(got.encryption?.decrypted, true, "the virtual user decrypted it");

    const sent = await bob.sendText(roomId, "hello from the appservice");
    const seen = await alice.waitForMessage(roomId, (m) => m.eventId === sent && m.decrypted);
    assert.equal(seen.body, "hello from the appservice");
    assert.equal(seen.sender, bob.userId);
    assert.ok(seen.encrypted);

    // The virtual user cross-signs its device (a first upload needs no password); js-sdk sees it.
    const status = await bob.bootstrapCrossSigning();
    assert.equal(status.deviceCrossSigned, true);
    await alice.waitForDeviceStatus(bob.userId, bob.deviceId, (s) => s.signedByOwner);

    // One /sync per user start, for its account data (transactions carry none), naming no device
    // so that no device's to-device messages are touched; every other request of the virtual user
    // named it and its device.
    const syncs = requests.filter((u) => u.pathname.endsWith("/sync"));
    assert.deepEqual(
      syncs.map((u) => u.searchParams.get("user_id")),
      [bob.userId],
    );
    for (const u of syncs) assert.equal(u.searchParams.get("device_id"), null);
    const asBob = requests.filter((u) => u.searchParams.get("user_id") === bob.userId);
    assert.ok(asBob.some((u) => u.pathname.endsWith("/keys/upload")));
    assert.ok(asBob.some((u) => u.pathname.includes("/send/m.room.encrypted/")));
    for (const u of asBob.filter((x) => !x.pathname.includes("/devices/") && !x.pathname.endsWith("/sync"))) {
      assert.equal(u.searchParams.get("device_id"), bob.deviceId, u.pathname);
      assert.equal(u.searchParams.get("org.matrix.msc3202.device_id"), bob.deviceId);
    }
  });

  it("runs a keyroom/bot bot as the appservice's own user: a js-sdk user gets its encrypted answer", async () => {
    const as = appservice!;
    const client = await as.user(as.senderUserId);
    const bot = new Bot({ client, invites: "anyone" });
    bot.command("echo", { args: { text: arg.rest() }, help: "say TEXT back" }, (ctx, { text }) =>
      ctx.reply(text),
    );
    await bot.start();
    const carol = await registerPeer("js-sdk", server.baseUrl, "carol", "carol-password");
    peers.push(carol);
    const roomId = await carol.createRoom({ encrypted: true, invite: [client.userId] });
    // The bot accepts the invite it got in a transaction.
    await carol.waitForMembership(roomId, client.userId, "join");
    await carol.waitForDevices(client.userId, (ids) => ids.includes(client.deviceId));
    await carol.sendText(roomId, "!echo hi through the appservice");
    const answer = await carol.waitForMessage(roomId, (m) => m.sender === client.userId && m.decrypted);
    assert.equal(answer.body, "hi through the appservice");
    await bot.stop();
  });
});
