// keyroom/appservice against the devserver, Keyroom on both sides: namespaces enforced on the
// appservice side, a duplicate transaction handled once, two virtual users of one appservice in an
// encrypted room, and a restart on the same data directory that keeps every user's device and keys.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  Appservice,
  AppserviceError,
  type AppserviceListener,
  generateRegistration,
  listenAppservice,
  parseTransaction,
  type Registration,
} from "../../src/appservice/index.ts";
import { ECHO_SKILL, runBotDir } from "../../src/bot/index.ts";
import { startDevServer } from "../../src/devserver/index.ts";
import { MatrixClient as Client, type MatrixClient, type RoomEvent } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";

function nextMessage(client: MatrixClient, body: string): Promise<RoomEvent> {
  return new Promise((resolve) => {
    const off = client.on("room.event", (_room, ev) => {
      if (ev.type === "m.room.message" && ev.content.body === body) {
        off();
        resolve(ev);
      }
    });
  });
}

describe("appservice with Keyroom virtual users", { timeout: scaledMs(120_000) }, () => {
  let server: Awaited<ReturnType<typeof startDevServer>>;
  let listener: AppserviceListener;
  let reg: Registration;
  let current: Appservice | undefined;
  let dir: string;
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  /** What `onError` reported: [userId, txnId]. */
  const givenUp: [string, string][] = [];
  let human: MatrixClient | undefined;
  let sharedRoom = "";

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "kr-appservice-"));
    reg = generateRegistration({
      id: "as",
      url: null,
      senderLocalpart: "asbot",
      serverName: "localhost",
      userPrefix: "v_",
    });
    listener = await listenAppservice(
      { port: 0, hsToken: reg.hs_token, logger: quiet },
      {
        transaction: async (txnId, txn) => {
          if (!current) throw new Error("not ready");
          await current.handleTransaction(txnId, txn);
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
    await human?.close();
    await current?.close();
    await listener.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts an appservice on the data directory; `ready` runs before it takes transactions. */
  const open = async (ready?: (as: Appservice) => Promise<void>): Promise<Appservice> => {
    const as = new Appservice({
      registration: reg,
      homeserverUrl: server.baseUrl,
      dataDir: dir,
      onError: (_e, userId, txnId) => givenUp.push([userId, txnId]),
    });
    await as.start();
    await ready?.(as);
    current = as;
    return as;
  };

  it("refuses users outside its namespaces and handles a repeated transaction once", async () => {
    const early = new Appservice({ registration: reg, homeserverUrl: server.baseUrl });
    await assert.rejects(
      early.handleTransaction("early", {
        events: [],
        ephemeral: [],
        toDevice: [],
        deviceLists: undefined,
        oneTimeKeyCounts: {},
        unusedFallbackKeyTypes: {},
      }),
      (e: unknown) => e instanceof AppserviceError && e.code === "NOT_STARTED",
    );
    const as = await open();
    assert.equal(as.senderUserId, "@asbot:localhost");
    await assert.rejects(
      as.user("mallory"),
      (e: unknown) => e instanceof AppserviceError && e.code === "NOT_IN_NAMESPACE",
    );
    await assert.rejects(
      as.user("@v_x:elsewhere.org"),
      (e: unknown) => e instanceof AppserviceError && e.code === "NOT_IN_NAMESPACE",
    );
    const txn = {
      events: [],
      ephemeral: [],
      toDevice: [],
      deviceLists: undefined,
      oneTimeKeyCounts: {},
      unusedFallbackKeyTypes: {},
    };
    assert.equal(await as.handleTransaction("manual-1", txn), true);
    assert.equal(await as.handleTransaction("manual-1", txn), false);
  });

  it("two virtual users talk in an encrypted room; after a restart on the same data they keep their devices and keys", async () => {
    let as = current!;
    const ann = await as.user("v_ann");
    const ben = await as.user("v_ben");
    const roomId = await ann.createRoom({ encrypted: true, invite: [ben.userId] });
    await ben.joinRoom(roomId);
    const got = nextMessage(ben, "one");
    await ann.sendText(roomId, "one");
    assert.equal((await got).encryption?.decrypted, true);
    const devices = [ann.deviceId, ben.deviceId];

    // A human outside the appservice, to check the restarted users from the other side.
    const h = new Client({
      homeserverUrl: server.baseUrl,
      encryption: { store: dirStore(dir, "human") },
      syncTimeoutMs: 500,
    });
    human = h;
    await h.register({ username: "human", password: "pw" });
    await h.startSync();
    await ann.invite(roomId, h.userId);
    await waitFor(() => h.getRoom(roomId)?.membership === "invite");
    await h.joinRoom(roomId);
    const seenByHuman = nextMessage(h, "before restart");
    await ann.sendText(roomId, "before restart");
    assert.equal((await seenByHuman).encryption?.decrypted, true);

    // A transaction handled just before the appservice stops, which the homeserver sends again
    // (as it does when the answer never came): after the restart it is not handled twice.
    const replay = parseTransaction({
      events: [
        {
          event_id: "$replayed",
          type: "m.room.message",
          sender: h.userId,
          room_id: roomId,
          origin_server_ts: Date.now(),
          content: { msgtype: "m.text", body: "replayed" },
        },
      ],
    });
    const replayedOnce = nextMessage(ann, "replayed");
    assert.equal(await as.handleTransaction("replay-1", replay), true);
    await replayedOnce;

    await as.close();
    // Sent while the appservice is down: the homeserver keeps retrying the transaction.
    await h.sendText(roomId, "during downtime");
    let duringDowntime: Promise<RoomEvent> | undefined;
    as = await open(async (restarted) => {
      // Users found in the data directory are back before any transaction is handled.
      assert.deepEqual(restarted.userIds.sort(), [ann.userId, ben.userId]);
      duringDowntime = nextMessage(await restarted.user("v_ben"), "during downtime");
    });
    assert.equal((await duringDowntime!).encryption?.decrypted, true);
    const ann2 = await as.user("v_ann");
    const ben2 = await as.user("v_ben");
    let replays = 0;
    const offReplay = ann2.on("room.event", (_room, ev) => {
      if (ev.content.body === "replayed") replays++;
    });
    await as.handleTransaction("replay-1", replay);
    offReplay();
    assert.equal(replays, 0, "a transaction handled before the restart is not handled again");
    assert.deepEqual([ann2.deviceId, ben2.deviceId], devices, "same devices after the restart");
    assert.equal(ann2.getRoom(roomId)?.encrypted, true, "room state kept");
    const fromHuman = nextMessage(ben2, "after restart");
    await h.sendText(roomId, "after restart");
    assert.equal((await fromHuman).encryption?.decrypted, true);
    const toHuman = nextMessage(h, "back again");
    await ann2.sendText(roomId, "back again");
    assert.equal((await toHuman).encryption?.decrypted, true);
    sharedRoom = roomId;
  });

  it("gives up on a virtual user whose client broke after a few attempts; the others keep going", async () => {
    const as = current!;
    const ann = await as.user("v_ann");
    const cat = await as.user("v_cat");
    // Its stores are closed: every share of a transaction fails for it.
    await cat.close();
    await ann.invite(sharedRoom, cat.userId);
    const later = nextMessage(ann, "after the broken one");
    await human!.sendText(sharedRoom, "after the broken one");
    assert.equal((await later).encryption?.decrypted, true);
    assert.ok(givenUp.some(([userId]) => userId === cat.userId));
    assert.ok(!givenUp.some(([userId]) => userId === ann.userId));
  });

  it("runs a bot directory (keyroom bot's config and skills) as a virtual user", async () => {
    const as = current!;
    const botDir = join(dir, "echo-bot");
    const skillFile = "skills/echo.mjs";
    mkdirSync(join(botDir, "skills"), { recursive: true });
    writeFileSync(join(botDir, skillFile), ECHO_SKILL);
    writeFileSync(
      join(botDir, "bot.yaml"),
      [
        `homeserver: ${server.baseUrl}`,
        "user: '@v_echo:localhost'",
        "invites: anyone",
        `skills: ["./${skillFile}"]`,
        "",
      ].join("\n"),
    );
    const client = await as.user("v_echo");
    const running = await runBotDir(botDir, { logger: quiet, client });
    try {
      const h = human!;
      const roomId = await h.createRoom({ encrypted: true, invite: [client.userId] });
      await waitFor(() => h.getRoom(roomId)?.getMember(client.userId)?.membership === "join");
      const answer = nextMessage(h, "hi from a bot directory");
      await h.sendText(roomId, "!echo hi from a bot directory");
      const got = await answer;
      assert.equal(got.sender, client.userId);
      assert.equal(got.encryption?.decrypted, true);
    } finally {
      await running.stop();
    }
  });
});

function dirStore(base: string, name: string): { directory: string } {
  return { directory: join(base, name) };
}

async function waitFor(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, 20));
}
