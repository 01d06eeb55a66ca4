// Two echo bots in one room, and a user who nests commands: each bot's answer is a notice, which
// bots do not handle, so the line gets one answer. As m.text, each answer was the other bot's next
// command: `!echo !echo … x` bounced between them once per level (hundreds from one message).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { silentLogger } from "keyroom";
import { Bot, ECHO_SKILL, installSkill, loadSkill } from "keyroom/bot";
import { fakeBotClient, fakeMember, fakeMessage } from "keyroom/bot/testing";

const here = fileURLToPath(new URL(".", import.meta.url));

test("two echo bots do not answer each other", async () => {
  const echo = await loadSkill(join(here, "skills/echo.mjs"));
  const room = "!two:fake.example";
  const bots = await Promise.all(
    ["@one:fake.example", "@two:fake.example"].map(async (userId) => {
      const f = await fakeBotClient(userId);
      const bot = new Bot({ client: f.client });
      await installSkill(bot, echo, undefined, silentLogger);
      await bot.start();
      await f.feed({});
      await f.feedTimeline(room, [fakeMember(userId, "join")]);
      return { f, bot, userId };
    }),
  );
  const levels = 50;
  const line = `${"!echo ".repeat(levels)}x`;
  for (const { f } of bots) await f.feedTimeline(room, [fakeMessage("@mallory:fake.example", line)]);
  // Relay what each bot sends to the other, as a server would, until they are quiet.
  let rounds = 0;
  const relayed = bots.map(() => 0);
  for (let quiet = false; !quiet && rounds < levels + 5; rounds++) {
    quiet = true;
    for (const [i, from] of bots.entries()) {
      const to = bots[1 - i];
      const fresh = from.f.sent.slice(relayed[i]);
      relayed[i] = from.f.sent.length;
      if (fresh.length === 0 || to === undefined) continue;
      quiet = false;
      await to.f.feedTimeline(
        room,
        fresh.map((s) => ({ ...fakeMessage(from.userId, ""), content: s.content })),
      );
    }
  }
  const total = bots.reduce((n, b) => n + b.f.sent.length, 0);
  assert.equal(total, 2, "one answer from each bot to the user, none to each other");
  for (const { bot } of bots) await bot.stop();
});

test("the echo skill bot init writes is the example's", async () => {
  const example = await readFile(join(here, "skills/echo.mjs"), "utf8");
  assert.equal(ECHO_SKILL.replace(/\s+/g, ""), example.replace(/\s+/g, ""));
});
