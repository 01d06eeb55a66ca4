// Any line a room member can send, through the bot: generated command lines (known and unknown
// names, unclosed quotes, many arguments, lone surrogates, bidirectional overrides, zero-width
// characters, NUL, line breaks, huge bodies) get at most one answer each, bounded and carrying
// `m.mentions`, and never reach the error boundary.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { JsonObject } from "../index.ts";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { MAX_COMMAND_BODY } from "./dispatch.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const tricky = fc.constantFrom(
  '"',
  "'",
  " ",
  "\n",
  "\t",
  "\u0000",
  "\u202e",
  "\u2066",
  "\u200b",
  "\ufeff",
  "\ud800",
  "\udfff",
  "😀",
  "İ",
  "!",
  "@",
  ":",
  "5m",
  "-1",
  "9007199254740993",
  "@a:b",
);
const word = fc.oneof(
  fc.constantFrom("echo", "ECHO", "n", "d", "who", "pick", "help", "say", "nosuch", "", "h\u0130lp"),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.array(tricky, { maxLength: 8 }).map((parts) => parts.join("")),
);
const line = fc
  .tuple(
    fc.constantFrom("!", "!", "!", "!", "!!", " !", "", "！"),
    fc.oneof({ weight: 3, arbitrary: fc.constantFrom("echo", "n", "d", "who", "say", "s", "help") }, word),
    fc.array(fc.oneof(word, tricky), { maxLength: 30 }),
    fc.constantFrom(" ", "  ", "\n", '"', ""),
  )
  .map(([prefix, name, args, sep]) => `${prefix}${name} ${args.join(sep)}`);
const huge = fc
  .tuple(fc.constantFrom("!echo ", "!help ", "!n ", '!say "'), fc.integer({ min: 4_000, max: 70_000 }))
  .map(([start, n]) => start + "x ".repeat(n / 2));

test("generated command lines: at most one bounded answer each, never the error boundary", async () => {
  const f = await fakeBotClient();
  const failures: unknown[] = [];
  const bot = new Bot({
    client: f.client,
    // Over a thousand lines in one room in no time: the loop breaker would stop answering them
    // (it has its own tests, answer-limits.test.ts).
    answerLimits: { perRoomPerMinute: 10_000 },
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (fields) => void failures.push(fields),
    },
  });
  bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text));
  bot.command("n", { args: { n: arg.int({ min: 1, max: 10 }), m: arg.number().optional() } }, (ctx, a) =>
    ctx.reply(`${a.n} ${a.m}`),
  );
  bot.command("d", { args: { delay: arg.duration(), rest: arg.rest().optional() } }, (ctx, a) =>
    ctx.reply(`${a.delay}`),
  );
  bot.command("who", { args: { who: arg.user(), what: arg.choice(["a", "b"]).default("a") } }, (ctx, a) =>
    ctx.markdown(`**${a.who}** ${a.what}`),
  );
  bot.command("say", { args: { a: arg.string(), b: arg.string().optional() }, aliases: ["s"] }, (ctx, a) =>
    ctx.replyTo(`${a.a}|${a.b}`),
  );
  await bot.start();
  await f.feed({});
  const room = "!fuzz:fake.example";
  await f.feedTimeline(room, [fakeMember(FAKE_BOT_USER, "join")]);

  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof({ weight: 9, arbitrary: line }, { weight: 1, arbitrary: huge }), {
        minLength: 1,
        maxLength: 10,
      }),
      async (bodies) => {
        const before = f.sent.length;
        const events = bodies.map((b) => fakeMessage("@mallory:fake.example", b));
        await f.feedTimeline(room, events);
        const answers = f.sent.slice(before);
        assert.ok(answers.length <= bodies.length, "at most one answer per message");
        for (const a of answers) {
          const body = a.content.body as string;
          assert.ok(body.length <= MAX_COMMAND_BODY, `bounded (${body.length})`);
          const mentions = a.content["m.mentions"] as JsonObject | undefined;
          assert.ok(mentions !== undefined && mentions.room === undefined, "m.mentions, never @room");
          assert.doesNotMatch(body, /^Sorry, that failed/);
        }
        for (const [i, b] of bodies.entries()) {
          if (b.length > MAX_COMMAND_BODY)
            assert.ok(
              !answers.some((a) => a.txnId.startsWith(`bot.${events[i]?.event_id}.`)),
              "too long: ignored",
            );
        }
      },
    ),
    { seed: 7_122_026, numRuns: 150 },
  );
  assert.deepEqual(failures, []);
  assert.ok(f.sent.length > 200, `the lines reached the commands (${f.sent.length} answers)`);
  await bot.stop();
});
