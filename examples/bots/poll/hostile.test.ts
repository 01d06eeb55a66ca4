// The poll bot against a crowd: more votes than the room's state can hold (long user IDs, which a
// homeserver picks for its users) are not counted, and the bot stays quiet about it, rather than
// answering every further reaction with "Sorry, that failed". Fed through a client without a
// homeserver, so hundreds of voters cost nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "keyroom";
import { Bot, installSkill } from "keyroom/bot";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "keyroom/bot/testing";
import poll, { MAX_VOTERS } from "./skills/poll.ts";

/** The poll skill's bot on a client without a homeserver, synced once; its room (not joined yet). */
async function pollBot() {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  await installSkill(bot, poll, undefined, silentLogger);
  await bot.start();
  await f.feed({});
  return { f, bot, room: "!poll:fake.example" };
}

test("votes past what the room's state holds are dropped quietly", async () => {
  const { f, bot, room } = await pollBot();
  await f.feedTimeline(room, [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage("@alice:x.example", "!poll Lunch? | a | b"),
  ]);
  const pollId = `$sent1`;
  assert.equal(f.sent[0]?.content.body, "**Lunch?**\n1️⃣ a\n2️⃣ b\nReact to vote.");
  const sentBefore = f.sent.length;
  const reactions = Array.from({ length: MAX_VOTERS }, (_, i) => ({
    type: "m.reaction",
    event_id: `$vote${i}`,
    sender: `@${"v".repeat(230)}${i}:x.example`,
    origin_server_ts: 1_800_000_000_000 + i,
    content: { "m.relates_to": { rel_type: "m.annotation", event_id: pollId, key: "1️⃣" } },
  }));
  await f.feedTimeline(room, reactions);
  assert.equal(f.sent.length, sentBefore, "no answer to any vote");
  await f.feedTimeline(room, [fakeMessage("@alice:x.example", "!results")]);
  const results = f.sent.at(-1)?.content.body as string;
  const counted = Number(/1️⃣ a: (\d+)/.exec(results)?.[1]);
  assert.ok(counted > 100 && counted < MAX_VOTERS, `some counted, not all (${counted})`);
  await bot.stop();
});

test("a question or option with Markdown stays text: no hidden link, no image", async () => {
  const { f, bot, room } = await pollBot();
  await f.feedTimeline(room, [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(
      "@mallory:x.example",
      "!poll [Vote here](https://evil.example) | ![a](mxc://evil.example/px) | b",
    ),
  ]);
  const html = f.sent[0]?.content.formatted_body as string;
  assert.equal(
    html,
    // The bare URL is a link showing where it goes; "Vote here" is no link.
    '<strong>[Vote here](<a href="https://evil.example">https://evil.example</a>)</strong><br>\n1️⃣ ![a](mxc://evil.example/px)<br>\n2️⃣ b<br>\nReact to vote.',
  );
  await f.feedTimeline(room, [fakeMessage("@mallory:x.example", "!results")]);
  const edit = f.sent.find((s) => s.content["m.new_content"] !== undefined);
  assert.equal(
    (edit?.content["m.new_content"] as { body?: string } | undefined)?.body,
    "[Vote here](https://evil.example)\n1️⃣ ![a](mxc://evil.example/px): 0\n2️⃣ b: 0",
    "the edited poll is plain text, without escapes",
  );
  assert.doesNotMatch(
    f.sent.at(-1)?.content.formatted_body as string,
    /<a href="https:\/\/evil.example">Vote|<img/,
  );
  await bot.stop();
});
