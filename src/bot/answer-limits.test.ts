// The loop breaker (`answerLimits`): what a bot sends in answer to room events is bounded per room
// in a sliding minute, so two bots answering each other stop, while a busy room of people is
// answered in full; and the error boundary's notices are bounded per room. Fed through clients
// without a homeserver (`fakeBotClient`) on a fake clock, so the whole exchange runs in no time.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JsonObject, Logger } from "../index.ts";
import {
  ANSWER_WINDOW_MS,
  DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE,
  ERROR_NOTICE_INTERVAL_MS,
} from "./answer-limits.ts";
import { Bot } from "./bot.ts";
import { validateConfig } from "./config.ts";
import type { BotOptions } from "./options.ts";
import { fakeBotClient, fakeMember, fakeMessage, type SentEvent } from "./testing/fake-client.ts";
import { FakeClock } from "./testing/fake-clock.ts";

const ROOM = "!loop:fake.example";

async function bot(userId: string, clock: FakeClock, opts: Partial<BotOptions> = {}) {
  const f = await fakeBotClient(userId);
  const logs: { obj: unknown; msg: string | undefined }[] = [];
  const log = (obj?: unknown, msg?: string) => void logs.push({ obj, msg });
  const logger: Logger = { debug: log, info: log, warn: log, error: log };
  const b = new Bot({ client: f.client, clock, logger, ...opts });
  await b.start();
  await f.feed({});
  await f.feedTimeline(ROOM, [fakeMember(userId, "join")]);
  return { f, bot: b, logs };
}

/** `s`, as the other bot's client gets it from its sync: a message event from `sender`. */
function asEvent(sender: string, s: SentEvent): JsonObject {
  return { ...fakeMessage(sender, ""), type: s.type, content: s.content };
}

const limitLogs = (logs: { msg: string | undefined }[]) =>
  logs.filter((l) => l.msg?.includes("answerLimits.perRoomPerMinute"));

test("two bots answering each other with m.text stop within the bound, and say nothing about it", async () => {
  const clock = new FakeClock();
  const a = await bot("@a:fake.example", clock);
  const b = await bot("@b:fake.example", clock);
  // A `hears` skill answering with `reply` (m.text), as the echo skill once did: each bot's answer
  // is the other's next trigger.
  a.bot.hears(/ping/, (ctx) => ctx.reply(`${ctx.body} ping`.slice(-64)));
  b.bot.hears(/ping/, (ctx) => ctx.reply(`${ctx.body} ping`.slice(-64)));
  await a.f.feedTimeline(ROOM, [fakeMessage("@human:fake.example", "ping")]);
  let seenA = 0;
  let seenB = 0;
  let rounds = 0;
  // Relays each bot's new sends to the other, until neither sends (without the bound: for ever). The
  // fake clock stands still, so the whole exchange falls in one minute.
  while (rounds < 10 * DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE) {
    rounds++;
    const fromA = a.f.sent.slice(seenA);
    seenA = a.f.sent.length;
    if (fromA.length > 0)
      await b.f.feedTimeline(
        ROOM,
        fromA.map((s) => asEvent("@a:fake.example", s)),
      );
    const fromB = b.f.sent.slice(seenB);
    seenB = b.f.sent.length;
    if (fromB.length > 0)
      await a.f.feedTimeline(
        ROOM,
        fromB.map((s) => asEvent("@b:fake.example", s)),
      );
    if (fromA.length === 0 && fromB.length === 0) break;
  }
  assert.ok(a.f.sent.length <= DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE, `a sent ${a.f.sent.length}`);
  assert.ok(b.f.sent.length <= DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE, `b sent ${b.f.sent.length}`);
  assert.ok(rounds < 10 * DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE, "the loop did not stop");
  // No "slow down", no "Sorry, that failed": every message sent is an answer of the loop itself.
  for (const s of [...a.f.sent, ...b.f.sent]) assert.match(String(s.content.body), /ping$/);
  // One log line per episode, naming the room and the bound, not the text.
  const lines = [...limitLogs(a.logs), ...limitLogs(b.logs)];
  assert.equal(lines.length, 1);
  assert.doesNotMatch(JSON.stringify(lines), /ping/);
  // The loop is over for good: when the minute frees, there is nothing left to answer.
  await clock.advance(ANSWER_WINDOW_MS);
  await a.f.feed({});
  await b.f.feed({});
  assert.equal(a.f.sent.length, seenA);
  assert.equal(b.f.sent.length, seenB);
});

test("past the bound the room gets no answers until the minute frees; jobs and webhooks still post", async () => {
  const clock = new FakeClock();
  const a = await bot("@a:fake.example", clock, { answerLimits: { perRoomPerMinute: 3 } });
  a.bot.command("hi", {}, (ctx) => ctx.reply("hello"));
  const say = (n: number) =>
    a.f.feedTimeline(
      ROOM,
      Array.from({ length: n }, () => fakeMessage("@human:fake.example", "!hi")),
    );
  await say(5);
  assert.equal(a.f.sent.length, 3);
  // `bot.room()` sends (scheduled jobs, webhooks) are not answers: not counted, not refused.
  await a.bot.room(ROOM).notice("nightly report");
  assert.equal(a.f.sent.length, 4);
  await clock.advance(ANSWER_WINDOW_MS / 2);
  await say(1);
  assert.equal(a.f.sent.length, 4);
  await clock.advance(ANSWER_WINDOW_MS / 2);
  await say(2);
  assert.equal(a.f.sent.length, 6);
  // Two episodes, one line each.
  assert.equal(limitLogs(a.logs).length, 1);
  await say(2);
  assert.equal(a.f.sent.length, 7);
  assert.equal(limitLogs(a.logs).length, 2);
  assert.deepEqual(
    a.f.sent.map((s) => s.content.body),
    ["hello", "hello", "hello", "nightly report", "hello", "hello", "hello"],
  );
});

test("a busy room, every user running a command a second, is answered in full under the default", async () => {
  const clock = new FakeClock();
  const a = await bot("@a:fake.example", clock);
  a.bot.command("roll", {}, (ctx) => ctx.reply(`${ctx.sender} rolled 4`));
  // As many users as the default allows each sending a command every second (sixty users each
  // sending one every thirty seconds make the same load), for three minutes.
  const users = DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE / 60;
  assert.ok(users >= 2);
  const seconds = 180;
  for (let s = 0; s < seconds; s++) {
    const batch = Array.from({ length: users }, (_, i) => fakeMessage(`@user${i}:fake.example`, "!roll"));
    await a.f.feedTimeline(ROOM, batch);
    await clock.advance(1_000);
  }
  assert.equal(a.f.sent.length, users * seconds);
  assert.deepEqual(limitLogs(a.logs), []);
});

test("the error boundary's notice goes to a room at most once per ERROR_NOTICE_INTERVAL_MS", async () => {
  const clock = new FakeClock();
  const a = await bot("@a:fake.example", clock);
  a.bot.hears(/./, () => {
    throw new Error("broken skill");
  });
  const sorry = () => a.f.sent.filter((s) => String(s.content.body).startsWith("Sorry, that failed")).length;
  for (let i = 0; i < 10; i++) await a.f.feedTimeline(ROOM, [fakeMessage("@human:fake.example", "x")]);
  assert.equal(sorry(), 1);
  // Every failure is still logged.
  assert.equal(a.logs.filter((l) => l.msg === "handler failed").length, 10);
  await clock.advance(ERROR_NOTICE_INTERVAL_MS - 1);
  await a.f.feedTimeline(ROOM, [fakeMessage("@human:fake.example", "x")]);
  assert.equal(sorry(), 1);
  await clock.advance(1);
  await a.f.feedTimeline(ROOM, [fakeMessage("@human:fake.example", "x")]);
  assert.equal(sorry(), 2);
  // Another room has its own.
  await a.f.feedTimeline("!other:fake.example", [
    fakeMember("@a:fake.example", "join"),
    fakeMessage("@human:fake.example", "x"),
  ]);
  assert.equal(sorry(), 3);
});

test("answerLimits in bot.yaml: a positive whole number; a bad or unknown key is named", () => {
  const base = { homeserver: "https://example.org", user: "@bot:example.org" };
  const ok = validateConfig({ ...base, answerLimits: { perRoomPerMinute: 30 } });
  assert.deepEqual(ok.answerLimits, { perRoomPerMinute: 30 });
  assert.throws(
    () => validateConfig({ ...base, answerLimits: { perRoomPerMinute: 0 } }),
    /answerLimits\.perRoomPerMinute: /,
  );
  assert.throws(
    () => validateConfig({ ...base, answerLimits: { perMinute: 30 } }),
    /answerLimits\.perMinute: unknown key/,
  );
});

test("forgetting a room drops what the limiter kept for it", async () => {
  const clock = new FakeClock();
  const a = await bot("@a:fake.example", clock);
  a.bot.command("hi", {}, (ctx) => ctx.reply("hello"));
  await a.f.feedTimeline(ROOM, [fakeMessage("@human:fake.example", "!hi")]);
  assert.equal(a.bot.roomMemory().answers, 1);
  await a.f.feed({
    rooms: { leave: { [ROOM]: { timeline: { events: [fakeMember("@a:fake.example", "leave")] } } } },
  });
  assert.equal(a.bot.roomMemory().answers, 0);
});
