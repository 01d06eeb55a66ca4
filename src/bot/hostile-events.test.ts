// Events of any shape a server can send, through the bot with every kind of handler: contents of
// arbitrary JSON where the bot reads `body`, `msgtype`, `m.relates_to`, `m.mentions`,
// `m.new_content` and `membership`. Nothing reaches the error boundary or the queue's error log
// from the bot itself (handlers that ran got what they were promised), and the bot goes on.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { JsonObject } from "../index.ts";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const json = fc.jsonValue({ maxDepth: 2 });
const field = fc.oneof(
  json,
  fc.string(),
  fc.constantFrom("!echo hi", "hi", "!help", "m.text", "m.notice", "join", "leave", "$e", FAKE_BOT_USER),
);
const content = fc.record(
  {
    body: field,
    msgtype: field,
    "m.relates_to": fc.oneof(
      field,
      fc.record(
        {
          rel_type: fc.oneof(fc.constantFrom("m.annotation", "m.replace", "m.thread"), field),
          event_id: field,
          key: field,
          "m.in_reply_to": field,
        },
        { requiredKeys: [] },
      ),
    ),
    "m.mentions": fc.oneof(
      field,
      fc.record({ user_ids: fc.oneof(field, fc.array(field)), room: field }, { requiredKeys: [] }),
    ),
    "m.new_content": field,
    membership: field,
  },
  { requiredKeys: [] },
);
const event = fc.record({
  type: fc.constantFrom(
    "m.room.message",
    "m.reaction",
    "m.room.member",
    "m.room.redaction",
    "m.sticker",
    "x.custom",
  ),
  state_key: fc.option(fc.constantFrom("", "@alice:fake.example", FAKE_BOT_USER), { nil: undefined }),
  sender: fc.constantFrom("@alice:fake.example", "@bob:other.example", FAKE_BOT_USER),
  content,
});

test("events of any shape: the bot's handlers get what they were promised, nothing fails", async () => {
  const f = await fakeBotClient();
  const errors: unknown[] = [];
  const bot = new Bot({
    client: f.client,
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: (x) => void errors.push(x),
    },
  });
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(what);
  };
  bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => {
    check(typeof text === "string" && typeof ctx.body === "string", "command");
  });
  bot.hears(/hi/, (ctx, m) => check(typeof ctx.body === "string" && m[0] === "hi", "hears"));
  bot.onMention((ctx) => check(typeof ctx.sender === "string", "mention"));
  bot.onMessage((ctx) => check(ctx.sender !== FAKE_BOT_USER && typeof ctx.body === "string", "message"));
  bot.onReaction((ctx) =>
    check(typeof ctx.key === "string" && typeof ctx.targetEventId === "string", "reaction"),
  );
  // Whose event a hostile target is gets asked of the (fake) server: no crash, no error.
  bot.onReaction({ ownMessagesOnly: true }, (ctx) => check(typeof ctx.key === "string", "own reaction"));
  bot.onMember((c) => check(typeof c.userId === "string" && c.userId !== FAKE_BOT_USER, "member"));
  await bot.start();
  await f.feed({});
  const room = "!hostile:fake.example";
  await f.feedTimeline(room, [fakeMember(FAKE_BOT_USER, "join")]);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 8 }), async (events) => {
      const raw = events.map((e) => ({
        ...e,
        ...(e.state_key === undefined ? { state_key: undefined } : {}),
        event_id: `$h${++n}`,
        origin_server_ts: 1_900_000_000_000 + n,
      }));
      for (const r of raw) if (r.state_key === undefined) delete (r as JsonObject).state_key;
      await f.feedTimeline(room, raw as JsonObject[]);
    }),
    { seed: 20_261_207, numRuns: 300 },
  );
  // The bot still answers.
  bot.command("ping", {}, (ctx) => ctx.notice("pong"));
  await f.feedTimeline(room, [fakeMessage("@alice:fake.example", "!ping")]);
  assert.equal(f.sent.at(-1)?.content.body, "pong");
  assert.deepEqual(errors, []);
  await bot.stop();
});
