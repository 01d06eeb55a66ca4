// Whom the bot's messages ping is said outright (`m.mentions`), so that a user's text the bot
// repeats (an echo, a usage error, an unknown command's name) cannot ping `@room` with the bot's
// power level, nor anyone by name: without `m.mentions`, clients and servers match the body.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

test("every message the bot sends carries m.mentions; replies mention the trigger's sender", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text));
  bot.command("n", { args: { n: arg.int() } }, () => undefined);
  bot.command("md", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.markdown(text, { notice: true }));
  bot.command("re", {}, (ctx) => ctx.replyTo("@room yes"));
  bot.command("thread", {}, (ctx) => ctx.replyInThread("@room yes"));
  bot.command("edit", {}, (ctx) => ctx.edit("$mine", "@room edited"));
  bot.command("file", {}, (ctx) => ctx.sendFile(new Uint8Array([1]), { filename: "@room.txt" }));
  bot.command("custom", {}, (ctx) =>
    ctx.sendContent({ msgtype: "m.text", body: "@room", "m.mentions": { room: true } }),
  );
  bot.command("boom", {}, () => {
    throw new Error("@room");
  });
  await bot.start();
  await f.feed({});
  const alice = "@alice:fake.example";
  await f.feedTimeline("!r:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(alice, "!echo @room look, Bob"),
    fakeMessage(alice, "!n @room"),
    fakeMessage(alice, "!help @room"),
    fakeMessage(alice, "!md **@room**"),
    fakeMessage(alice, "!re"),
    fakeMessage(alice, "!thread"),
    fakeMessage(alice, "!edit"),
    fakeMessage(alice, "!file"),
    fakeMessage(alice, "!custom"),
  ]);
  // The error boundary's notice goes to a room once a minute (`ERROR_NOTICE_INTERVAL_MS`), and
  // `!file` fails here (the fake server stores no upload): another room for this one.
  await f.feedTimeline("!r2:fake.example", [fakeMember(FAKE_BOT_USER, "join"), fakeMessage(alice, "!boom")]);
  const messages = f.sent.filter((s) => s.type === "m.room.message");
  assert.equal(messages.length, 10);
  const mentions = messages.map((s) => s.content["m.mentions"]);
  assert.deepEqual(mentions, [
    {},
    {},
    {},
    {},
    { user_ids: [alice] },
    { user_ids: [alice] },
    {},
    {},
    { room: true }, // what the skill wrote itself stays
    {},
  ]);
  const edit = messages[6]?.content as { "m.new_content"?: Record<string, unknown> };
  assert.deepEqual(edit["m.new_content"]?.["m.mentions"], {}, "the edit's new content too");
  await bot.stop();
});

test("a send whose options leave mentions undefined still pings nobody", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  // A skill that names whom to ping only sometimes: `undefined` is "nobody", as no option is.
  const pingIf = (who: string | undefined) => (who === undefined ? undefined : { userIds: [who] });
  bot.command("say", { args: { text: arg.rest() } }, async (ctx, { text }) => {
    await ctx.send(text, { mentions: pingIf(undefined) });
    await ctx.notice(text, { mentions: pingIf(undefined) });
    await ctx.markdown(text, { mentions: pingIf(undefined) });
    await bot.room(ctx.roomId).send(text, { mentions: pingIf(undefined) });
  });
  await bot.start();
  await f.feed({});
  await f.feedTimeline("!r:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage("@alice:fake.example", "!say @room look"),
  ]);
  assert.deepEqual(
    f.sent.map((s) => s.content["m.mentions"]),
    [{}, {}, {}, {}],
  );
  await bot.stop();
});
