// Proof: a matrix-js-sdk user (Rust crypto, Element's engine) talks to a Keyroom bot in an
// encrypted DM through the devserver: commands with arguments, a usage error, a reaction handler,
// an encrypted file (encrypted by vodozemac's attachment code) that the bot downloads, decrypts
// and answers about. The js-sdk side keeps "only cross-signed devices" on, so the bot's device
// must be cross-signed by its own identity to get the keys at all. With "never send to unverified
// devices" on (which js-sdk reads in its "all devices" mode only), the not yet verified bot gets no
// key: it sees the command withheld as m.unverified and never answers it. Then the bot starts SAS
// with the user, the user sees the bot verified and its device cross-signed, and with "never send
// to unverified devices" on again, the bot now gets the keys and answers. Last, the js-sdk user
// upgrades the DM: the bot joins the successor, carries the room's state there and answers
// encrypted.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import {
  AllDevicesIsolationMode,
  OnlySignedDevicesIsolationMode,
  VerificationPhase,
  type Verifier,
  VerifierEvent,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import { arg } from "../../src/bot/index.ts";
import { type BotTest, DEFAULT_WAIT_MS, startBotTest } from "../../src/bot/testing/index.ts";
import type { RoomEvent } from "../../src/client/index.ts";
import { scaledMs } from "../support/budget.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  bodyIs,
  JsSdkPeer,
  PEER_TEST_TIMEOUT_MS,
  skipUnlessAvailable,
  uniqueUsername,
} from "../support/peers/index.ts";
import { jsPhase, nextJsRequest } from "../support/peers/jssdk-verification.ts";
import { loadVodozemac } from "../support/vodozemac.ts";
import { settledUntil } from "./e2ee-client-helpers.ts";

let hs: TestDevServer;

let t: BotTest;
let js: JsSdkPeer | undefined;
/** The DM of the first test, upgraded by the second. */
let dmRoomId: string | undefined;

before(async () => {
  hs = await startTestDevServer();
  t = await startBotTest({
    waitMs: scaledMs(DEFAULT_WAIT_MS), // set-up steps and nextMessage: a busy machine is not a failure
    homeserverUrl: hs.baseUrl,
    setup: (bot) => {
      bot.command("add", { args: { a: arg.int(), b: arg.int() }, help: "add two numbers" }, (ctx, { a, b }) =>
        ctx.reply(String(a + b)),
      );
      // Per-room state in account data, which an upgrade carries to the successor.
      const counter = bot.state.define<number>("counter", {
        version: 1,
        initial: () => 0,
        validate: (v): v is number => typeof v === "number",
      });
      bot.command("count", {}, async (ctx) =>
        ctx.reply(`count ${await ctx.roomState(counter).update((v) => v + 1)}`),
      );
      bot.onReaction((ctx) => ctx.reply(`${ctx.sender} reacted ${ctx.key}`));
      bot.onMessage(async (ctx) => {
        if (ctx.event.content.msgtype !== "m.file") return;
        const bytes = await ctx.download();
        const sha = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
        await ctx.replyTo(`${ctx.body}: ${bytes.length} bytes, sha256 ${sha}…`);
      });
    },
  });
});
after(async () => {
  await js?.close();
  await t.close();
  await hs.close();
});

test("a js-sdk user and a Keyroom bot in an encrypted DM: commands, reaction, file, SAS, insecure devices excluded", {
  timeout: PEER_TEST_TIMEOUT_MS,
}, async (tc) => {
  if (skipUnlessAvailable(tc, ["js-sdk"])) return;
  const bot = t.bot;
  js = await JsSdkPeer.register(hs.baseUrl, uniqueUsername("js-sdk"), "pw");
  await js.bootstrapCrossSigning("pw");
  const crypto = js.client.getCrypto();
  assert.ok(crypto);
  crypto.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());

  const { room_id: roomId } = await js.client.createRoom({
    is_direct: true,
    preset: "trusted_private_chat" as never,
    invite: [bot.userId],
    initial_state: [
      { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
    ],
  });
  dmRoomId = roomId;
  await js.waitForMembership(roomId, bot.userId, "join");
  await js.waitForDeviceStatus(bot.userId, bot.client.deviceId, (s) => s.signedByOwner);
  const fromBot = (body: string) => bodyIs(body, bot.userId);

  // Commands with arguments, and a usage error answered in the room.
  await js.sendText(roomId, "!add 2 40");
  const sum = await js.waitForMessage(roomId, fromBot("42"));
  assert.equal(sum.decrypted, true, "the bot answers encrypted");
  await js.sendText(roomId, "!add two 40");
  await js.waitForMessage(
    roomId,
    fromBot('Usage: !add <a:number> <b:number>\n<a>: expected a whole number, got "two"'),
  );

  // A reaction handler.
  const eventId = await js.sendText(roomId, "react to me");
  await js.client.sendEvent(
    roomId,
    "m.reaction" as never,
    {
      "m.relates_to": { rel_type: "m.annotation", event_id: eventId, key: "👍" },
    } as never,
  );
  await js.waitForMessage(roomId, fromBot(`${js.userId} reacted 👍`));

  // An encrypted file: vodozemac encrypts it, js-sdk uploads and sends it encrypted.
  const wasm = await loadVodozemac();
  const data = new Uint8Array(10_000).map((_, i) => (i * 31) & 0xff);
  const encrypted = wasm.Attachment.encrypt(data);
  const upload = await js.client.uploadContent(
    new Blob([encrypted.encryptedData as Uint8Array<ArrayBuffer>]),
    {
      type: "application/octet-stream",
    },
  );
  const file = { ...JSON.parse(encrypted.mediaEncryptionInfo as string), url: upload.content_uri };
  await js.client.sendEvent(
    roomId,
    "m.room.message" as never,
    {
      msgtype: "m.file",
      body: "data.bin",
      info: { mimetype: "application/octet-stream", size: data.length },
      file,
    } as never,
  );
  const sha = createHash("sha256").update(data).digest("hex").slice(0, 16);
  await js.waitForMessage(roomId, fromBot(`data.bin: 10000 bytes, sha256 ${sha}…`));

  // "Never send to unverified devices" while the bot is not verified yet (its device is cross-signed
  // by an identity the user has not verified). js-sdk reads that setting only in its "all devices"
  // isolation mode, so the user switches to it: js-sdk withholds the key with m.unverified, the bot
  // sees the command undecryptable and cannot answer it (checked at the end: no "7" ever came).
  const botEvents: RoomEvent[] = [];
  const offBot = bot.client.on("room.event", (_room, ev) => void botEvents.push(ev));
  // The notice may come in a later sync than the event: the event is then emitted again.
  const offWithheld = bot.client.on("room.undecryptable", (_room, ev) => void botEvents.push(ev));
  crypto.setDeviceIsolationMode(new AllDevicesIsolationMode(false));
  crypto.globalBlacklistUnverifiedDevices = true;
  const hidden = await js.sendText(roomId, "!add 3 4");
  const isWithheld = (e: RoomEvent) =>
    e.eventId === hidden && e.encryption?.decrypted === false && e.encryption.code === "WITHHELD";
  await settledUntil(bot.client, () => botEvents.some(isWithheld));
  offBot();
  offWithheld();
  assert.ok(botEvents.every((e) => e.eventId !== hidden || e.encryption?.decrypted === false));
  const withheld = botEvents.find(isWithheld)?.encryption;
  assert.equal(withheld?.decrypted, false, "the bot cannot read it");
  assert.equal(withheld?.decrypted === false && withheld.withheldCode, "m.unverified");
  // Back to "only cross-signed devices" for the verification in the DM.
  crypto.globalBlacklistUnverifiedDevices = false;
  crypto.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());

  // The bot starts SAS; both sides compare the same emoji and confirm.
  const incoming = nextJsRequest(js);
  let botSaw: string[] = [];
  const verified = bot.verify(js.userId, async (sas) => {
    botSaw = sas.emoji.map((e) => e.name);
    return true;
  });
  const theirs = await incoming;
  assert.equal(theirs.roomId, roomId, "the request comes in the DM the bot joined");
  await theirs.accept();
  await jsPhase(theirs, VerificationPhase.Started);
  const verifier = theirs.verifier as Verifier;
  const shown = new Promise<{ names: string[]; confirm: () => Promise<void> }>((resolve) => {
    verifier.once(VerifierEvent.ShowSas, (cb) =>
      resolve({ names: (cb.sas.emoji ?? []).map(([, name]) => name), confirm: () => cb.confirm() }),
    );
  });
  const jsDone = verifier.verify();
  const sas = await shown;
  await sas.confirm();
  await jsDone;
  const request = await verified;
  assert.equal(request.phase, "done");
  assert.equal(botSaw.length, 7, "the bot was shown the seven emoji");
  assert.deepEqual(sas.names, botSaw, "the same emoji on both sides");
  await jsPhase(theirs, VerificationPhase.Done);
  assert.equal(
    (await crypto.getUserVerificationStatus(bot.userId)).isVerified(),
    true,
    "the js-sdk user verified the bot",
  );
  const device = await crypto.getDeviceVerificationStatus(bot.userId, bot.client.deviceId);
  assert.equal(device?.signedByOwner, true, "the bot's device is cross-signed by the bot");
  assert.equal(device?.crossSigningVerified, true, "and so verified through the bot's identity");
  assert.equal(
    (await bot.client.getUserIdentity(js.userId))?.verified,
    true,
    "the bot verified the user too",
  );

  // "Never send to unverified devices" again: the bot is verified now, so it gets the keys.
  crypto.setDeviceIsolationMode(new AllDevicesIsolationMode(false));
  crypto.globalBlacklistUnverifiedDevices = true;
  await js.sendText(roomId, "!add 1 1");
  await js.waitForMessage(roomId, fromBot("2"));
  crypto.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
  assert.equal(
    js.messages(roomId).some(fromBot("7")),
    false,
    "the command sent while the bot was unverified was never answered",
  );
});

test("the js-sdk user upgrades the DM: the bot follows with the room's state and answers encrypted there", {
  timeout: PEER_TEST_TIMEOUT_MS,
}, async (tc) => {
  if (skipUnlessAvailable(tc, ["js-sdk"])) return;
  assert.ok(js !== undefined && dmRoomId !== undefined, "runs after the DM test");
  const bot = t.bot;
  const oldRoom = dmRoomId;
  await js.sendText(oldRoom, "!count");
  await js.waitForMessage(oldRoom, bodyIs("count 1", bot.userId));
  const { replacement_room: newRoom } = await js.client.upgradeRoom(oldRoom, "10");
  // The successor of a private room is private too: its members are invited, as Element does.
  await js.invite(newRoom, bot.userId);
  await js.waitForMembership(newRoom, bot.userId, "join");
  // The successor carries the old room's encryption; the bot sees it once its sync brings the room.
  await settledUntil(bot.client, () => bot.client.getRoom(newRoom)?.encrypted === true);
  await js.sendText(newRoom, "!count");
  const answer = await js.waitForMessage(newRoom, bodyIs("count 2", bot.userId));
  assert.equal(answer.decrypted, true, "the bot answers encrypted in the successor");
});
