// How a message's body becomes a command (a reply's quoted fallback, `> <@bob:x> …` then an empty
// line, is not part of it), what the generated help shows (owner-only commands to owners), and
// how the bot's own answers to a command relate to it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const ROOM = "!r:fake.example";
const alice = "@alice:fake.example";
const replyTo = (eventId: string) => ({ "m.relates_to": { "m.in_reply_to": { event_id: eventId } } });

test("a command sent as a reply runs; the quoted message it replies to runs nothing", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.notice(text));
  const heard: string[] = [];
  bot.hears(/secret/, (ctx) => void heard.push(ctx.eventId));
  await bot.start();
  await f.feed({});
  await f.feedTimeline(ROOM, [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(
      alice,
      "> <@bob:fake.example> what about\n> the secret?\n\n!echo from a reply",
      replyTo("$q1"),
    ),
    // The replied-to message was a command: quoting it is no command.
    fakeMessage(alice, "> <@bob:fake.example> !echo quoted\n\nthanks", replyTo("$q2")),
    // Not a reply: a line starting with ">" is the user's own text.
    fakeMessage(alice, "> !echo quoted by hand\n\n!echo no"),
  ]);
  assert.deepEqual(
    f.sent.map((s) => s.content.body),
    ["from a reply"],
  );
  assert.deepEqual(heard, []);
  await bot.stop();
});

test("help lists owner-only commands to owners only", async () => {
  const f = await fakeBotClient();
  const owner = "@owner:fake.example";
  const bot = new Bot({ client: f.client, owners: [owner] });
  bot.command("deploy", { ownerOnly: true, help: "ship it" }, (ctx) => ctx.notice("shipped"));
  bot.command("ping", { help: "pong" }, (ctx) => ctx.notice("pong"));
  await bot.start();
  await f.feed({});
  await f.feedTimeline(ROOM, [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(alice, "!help"),
    fakeMessage(alice, "!help deploy"),
    fakeMessage(owner, "!help"),
    fakeMessage(owner, "!help deploy"),
  ]);
  const [aliceList, aliceOne, ownerList, ownerOne] = f.sent.map((s) => String(s.content.body));
  assert.doesNotMatch(aliceList ?? "", /deploy/);
  assert.match(aliceList ?? "", /!ping — pong/);
  assert.equal(aliceOne, 'No command "deploy". Try !help.');
  assert.match(ownerList ?? "", /!deploy — ship it/);
  assert.equal(ownerOne, "!deploy\nship it");
  await bot.stop();
});

test("usage answers, refusals and failures reply to the command (in its thread), pinging no one", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client, owners: ["@owner:fake.example"] });
  bot.command("remind", { args: { delay: arg.duration(), text: arg.rest() } }, (ctx) => ctx.notice("ok"));
  bot.command("deploy", { ownerOnly: true }, (ctx) => ctx.notice("shipped"));
  bot.command("boom", {}, async () => {
    throw new Error("broken");
  });
  await bot.start();
  await f.feed({});
  const usage = fakeMessage(alice, "!remind soon tea");
  const owners = fakeMessage(alice, "!deploy");
  const boom = fakeMessage(alice, "!boom");
  const inThread = fakeMessage(alice, "!remind", {
    "m.relates_to": {
      rel_type: "m.thread",
      event_id: "$root",
      is_falling_back: true,
      "m.in_reply_to": { event_id: "$root" },
    },
  });
  await f.feedTimeline(ROOM, [fakeMember(FAKE_BOT_USER, "join"), usage, owners, boom, inThread]);
  const answers = f.sent.map((s) => ({
    relates: s.content["m.relates_to"],
    mentions: s.content["m.mentions"],
  }));
  assert.deepEqual(answers, [
    { relates: { "m.in_reply_to": { event_id: usage.event_id } }, mentions: {} },
    { relates: { "m.in_reply_to": { event_id: owners.event_id } }, mentions: {} },
    { relates: { "m.in_reply_to": { event_id: boom.event_id } }, mentions: {} },
    {
      relates: {
        rel_type: "m.thread",
        event_id: "$root",
        is_falling_back: false,
        "m.in_reply_to": { event_id: inThread.event_id },
      },
      mentions: {},
    },
  ]);
  assert.match(String(f.sent[0]?.content.body), /^Usage: !remind <delay:duration> <text\.\.\.>/);
  await bot.stop();
});

test("a command addressed to the bot first (Bot: !cmd) runs; a name is an address only with a mention pill", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.notice(text));
  await bot.start();
  await f.feed({});
  const pill = { "m.mentions": { user_ids: [FAKE_BOT_USER] } };
  const botJoin = fakeMember(FAKE_BOT_USER, "join");
  botJoin.content = { membership: "join", displayname: "Helper Bot" };
  await f.feedTimeline(ROOM, [
    botJoin,
    fakeMessage(alice, "Helper Bot: !echo by display name", pill),
    fakeMessage(alice, "bot, !echo by localpart", pill),
    fakeMessage(alice, `${FAKE_BOT_USER} !echo by user ID`),
    // No pill: "Helper Bot" could be anyone's name.
    fakeMessage(alice, "Helper Bot: !echo not addressed"),
    // Addressed, but no command after the address.
    fakeMessage(alice, "Helper Bot: hello !echo x", pill),
  ]);
  assert.deepEqual(
    f.sent.map((s) => s.content.body),
    ["by display name", "by localpart", "by user ID"],
  );
  await bot.stop();
});

test("an alias cannot take another command's name or alias (it would shadow it)", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  bot.command("status", { aliases: ["st"] }, (ctx) => ctx.notice("status"));
  assert.throws(() => bot.command("stop", { aliases: ["st"] }, (ctx) => ctx.notice("stopping")), RangeError);
  assert.throws(
    () => bot.command("hijack", { aliases: ["help"] }, (ctx) => ctx.notice("gotcha")),
    RangeError,
  );
  assert.throws(() => bot.command("odd", { aliases: ["no spaces"] }, (ctx) => ctx.notice("odd")), RangeError);
  await bot.start();
  await f.feed({});
  await f.feedTimeline(ROOM, [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(alice, "!st"),
    fakeMessage(alice, "!help"),
  ]);
  assert.equal(f.sent[0]?.content.body, "status");
  assert.match(String(f.sent[1]?.content.body), /^Commands:/);
  await bot.stop();
});

test("a middleware that calls next() twice does not run the command twice", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  let deploys = 0;
  bot.use(async (_ctx, next) => {
    await next();
    await next(); // a retry written by mistake
  });
  bot.command("deploy", {}, (ctx) => {
    deploys++;
    return ctx.notice("deployed");
  });
  await bot.start();
  await f.feed({});
  await f.feedTimeline(ROOM, [fakeMember(FAKE_BOT_USER, "join"), fakeMessage(alice, "!deploy")]);
  assert.equal(deploys, 1);
  assert.equal(f.sent[0]?.content.body, "deployed");
  assert.match(String(f.sent[1]?.content.body), /^Sorry, that failed/, "and the mistake is reported");
  await bot.stop();
});

test("a user argument typed with a mention pill (the body shows a display name) is the pill's user ID", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  bot.command("kick", { args: { who: arg.user(), reason: arg.rest().optional() } }, (ctx, { who, reason }) =>
    ctx.notice(`${who} (${reason})`),
  );
  await bot.start();
  await f.feed({});
  const pilled = (body: string, html: string) =>
    fakeMessage(alice, body, { format: "org.matrix.custom.html", formatted_body: html });
  await f.feedTimeline(ROOM, [
    fakeMember(FAKE_BOT_USER, "join"),
    pilled(
      "!kick Alice Smith spamming",
      '!kick <a href="https://matrix.to/#/@alice:fake.example">Alice Smith</a> spamming',
    ),
    pilled(
      "!kick Tom & Jerry",
      '!kick <a href="https://matrix.to/#/%40tj%3Afake.example">Tom &amp; Jerry</a>',
    ),
    pilled(
      "!kick @bob:fake.example",
      '!kick <a href="https://matrix.to/#/@carol:fake.example">@bob:fake.example</a>',
    ),
    // No pill: a name is no user ID (nor is a link in another tag).
    fakeMessage(alice, "!kick Alice Smith"),
    pilled("!kick Al", '!kick <abbr href="https://matrix.to/#/@al:fake.example">Al</abbr></a>'),
    // Crafted HTML is read in one pass (a regex over it backtracked for minutes).
    pilled("!kick Al", `!kick ${"<a href='https://matrix.to/#/@".repeat(2_000)}`),
    pilled("!kick Al", `<mx-reply>${"<a <mx-reply>".repeat(5_000)}`),
  ]);
  assert.deepEqual(
    f.sent.map((s) => s.content.body),
    [
      "@alice:fake.example (spamming)",
      "@tj:fake.example (undefined)",
      "@bob:fake.example (undefined)",
      'Usage: !kick <who:user> [reason...]\n<who>: expected a user ID like @name:example.org, got "Alice"',
      'Usage: !kick <who:user> [reason...]\n<who>: expected a user ID like @name:example.org, got "Al"',
      'Usage: !kick <who:user> [reason...]\n<who>: expected a user ID like @name:example.org, got "Al"',
      'Usage: !kick <who:user> [reason...]\n<who>: expected a user ID like @name:example.org, got "Al"',
    ],
  );
  await bot.stop();
});
