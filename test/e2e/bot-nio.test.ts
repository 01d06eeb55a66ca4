// Proof: a matrix-nio user (libolm) does commands with a Keyroom bot in an encrypted room through
// the devserver: arguments, a usage error, the generated help.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { arg } from "../../src/bot/index.ts";
import { type BotTest, DEFAULT_WAIT_MS, startBotTest } from "../../src/bot/testing/index.ts";
import { scaledMs } from "../support/budget.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  bodyIs,
  closePeers,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  registerNewPeer,
  skipUnlessAvailable,
} from "../support/peers/index.ts";

let hs: TestDevServer;
let t: BotTest;
const peers: Peer[] = [];

before(async () => {
  hs = await startTestDevServer();
  t = await startBotTest({
    waitMs: scaledMs(DEFAULT_WAIT_MS), // set-up steps and nextMessage: a busy machine is not a failure
    homeserverUrl: hs.baseUrl,
    setup: (bot) => {
      bot.command(
        "repeat",
        { args: { times: arg.int({ min: 1, max: 5 }), text: arg.rest() }, help: "say TEXT TIMES times" },
        (ctx, { times, text }) => ctx.reply(Array.from({ length: times }, () => text).join(" ")),
      );
    },
  });
});
after(async () => {
  await closePeers(peers);
  await t.close();
  await hs.close();
});

test("a matrix-nio user runs commands with the bot in an encrypted room", {
  timeout: PEER_TEST_TIMEOUT_MS,
}, async (tc) => {
  if (skipUnlessAvailable(tc, ["nio"])) return;
  const nio = await registerNewPeer("nio", hs.baseUrl);
  peers.push(nio);
  const bot = t.bot;
  const roomId = await nio.createRoom({ encrypted: true, invite: [bot.userId], name: "nio and the bot" });
  await nio.waitForMembership(roomId, bot.userId, "join");
  await nio.waitForDevices(bot.userId, (ids) => ids.includes(bot.client.deviceId));
  await nio.sendText(roomId, "!repeat 3 la");
  const answer = await nio.waitForMessage(roomId, bodyIs("la la la", bot.userId));
  assert.equal(answer.decrypted, true);
  await nio.sendText(roomId, "!repeat 9 la");
  await nio.waitForMessage(
    roomId,
    bodyIs(
      'Usage: !repeat <times:number> <text...>\n<times>: expected a whole number from 1 to 5, got "9"',
      bot.userId,
    ),
  );
  await nio.sendText(roomId, "!help repeat");
  await nio.waitForMessage(
    roomId,
    bodyIs("!repeat <times:number> <text...>\nsay TEXT TIMES times", bot.userId),
  );
});
