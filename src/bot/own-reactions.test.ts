// `onReaction({ ownMessagesOnly: true })`: reactions to the bot's own messages only (a poll, a
// confirmation), whether the bot saw its message in sync or sent it before it was running (then
// the server is asked once); reactions to anyone else's message, to an unknown event, or to the
// bot's event ID named in another room do not reach it. Plain `onReaction` gets them all.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JsonObject } from "../index.ts";
import { Bot } from "./bot.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const ALICE = "@alice:fake.example";
const ROOM = "!r:fake.example";

let n = 0;
function reaction(target: string, key: string): JsonObject {
  return {
    type: "m.reaction",
    event_id: `$reaction${++n}`,
    sender: ALICE,
    origin_server_ts: 1_800_000_000_000 + n,
    content: { "m.relates_to": { rel_type: "m.annotation", event_id: target, key } },
  };
}

test("ownMessagesOnly: only reactions to the bot's own messages reach the handler", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const own: string[] = [];
  const all: string[] = [];
  bot.onReaction({ ownMessagesOnly: true }, (ctx) => void own.push(ctx.key));
  bot.onReaction((ctx) => void all.push(ctx.key));
  bot.command("ask", {}, (ctx) => ctx.notice("Sure? React 👍"));
  await bot.start();
  await f.feed({});

  const byAlice = fakeMessage(ALICE, "lunch?");
  const byBot = fakeMessage(FAKE_BOT_USER, "a poll");
  await f.feedTimeline(ROOM, [fakeMember(FAKE_BOT_USER, "join"), byAlice, byBot]);
  await f.feedTimeline(ROOM, [
    reaction(byAlice.event_id as string, "alice's"),
    reaction(byBot.event_id as string, "bot's, seen in sync"),
    reaction("$nowhere", "unknown"),
  ]);
  // The bot's message the sync did not show it (as one sent before a restart): the server says
  // whose it is. The same event ID named in another room is not the bot's message there.
  await f.feedTimeline(ROOM, [fakeMessage(ALICE, "!ask")]);
  const asked = "$sent1";
  assert.equal(f.sent[0]?.content.body, "Sure? React 👍");
  await f.feedTimeline(ROOM, [reaction(asked, "bot's, asked of the server")]);
  await f.feedTimeline("!other:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    reaction(asked, "bot's ID, other room"),
  ]);

  assert.deepEqual(own, ["bot's, seen in sync", "bot's, asked of the server"]);
  assert.deepEqual(all, [
    "alice's",
    "bot's, seen in sync",
    "unknown",
    "bot's, asked of the server",
    "bot's ID, other room",
  ]);
  await bot.stop();
});

test("ownMessagesOnly in a skill's scope, and a handler missing: TypeError", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const own: string[] = [];
  bot.scope("s").onReaction({ ownMessagesOnly: true }, (ctx) => void own.push(ctx.key));
  assert.throws(
    () => (bot.onReaction as (opts: object) => void)({ ownMessagesOnly: true }),
    (e: unknown) => e instanceof TypeError,
  );
  await bot.start();
  await f.feed({});
  const byAlice = fakeMessage(ALICE, "hi");
  const byBot = fakeMessage(FAKE_BOT_USER, "hello");
  await f.feedTimeline(ROOM, [fakeMember(FAKE_BOT_USER, "join"), byAlice, byBot]);
  await f.feedTimeline(ROOM, [
    reaction(byAlice.event_id as string, "a"),
    reaction(byBot.event_id as string, "b"),
  ]);
  assert.deepEqual(own, ["b"]);
  await bot.stop();
});
