// The poll bot: two users vote with reactions (one changes their mind), `!results` counts them;
// votes taken back (by the voter, or by a moderator) no longer count, and a voter's earlier
// reaction still standing counts again. A poll stored by the skill's first version (one option per
// voter) is read and counted on.
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "keyroom";
import { Bot, installSkill, STATE_EVENT_PREFIX } from "keyroom/bot";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage, startBotTest } from "keyroom/bot/testing";
import poll from "./skills/poll.ts";

test("poll: votes are counted from reactions, the latest standing one per user", async () => {
  const t = await startBotTest({ skills: [poll] });
  try {
    const alice = await t.user("alice"); // made the room: a moderator
    const bob = await t.user("bob");
    await alice.send("!poll Lunch? | pizza | soup");
    const question = await alice.nextMessage();
    assert.match(question.html ?? "", /<strong>Lunch\?<\/strong>/);
    await bob.nextMessage();
    const results = async () => {
      await alice.send("!results");
      return (await alice.nextMessage()).body;
    };
    const aliceSoup = await alice.react(question.eventId, "2️⃣");
    const bobSoup = await bob.react(question.eventId, "2️⃣");
    const bobPizza = await bob.react(question.eventId, "1️⃣");
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 1\n2️⃣ soup: 1");
    // Alice takes her vote back; Bob takes back pizza, and his soup, still standing, counts again.
    await alice.redact(aliceSoup);
    await bob.redact(bobPizza);
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 0\n2️⃣ soup: 1");
    // Alice, a moderator, removes Bob's last reaction: he has no vote left.
    await alice.redact(bobSoup);
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 0\n2️⃣ soup: 0");
    await alice.send("!poll only one option");
    assert.match((await alice.nextMessage()).body, /^Usage: !poll QUESTION/);
  } finally {
    await t.close();
  }
});

test("poll: a poll stored by the first version of the skill is counted on", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  await installSkill(bot, poll, undefined, silentLogger);
  await bot.start();
  try {
    await f.feed({});
    const room = "!poll:fake.example";
    const bob = "@bob:x.example";
    const v1 = { eventId: "$poll", question: "Lunch?", options: ["pizza", "soup"], votes: { [bob]: 0 } };
    await f.feed({
      rooms: {
        join: {
          [room]: {
            timeline: { events: [fakeMember(FAKE_BOT_USER, "join")], limited: false },
            account_data: {
              events: [{ type: `${STATE_EVENT_PREFIX}poll`, content: { version: 1, value: v1 } }],
            },
          },
        },
      },
    });
    const soup = {
      type: "m.reaction",
      event_id: "$soup",
      sender: bob,
      origin_server_ts: Date.now(),
      content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$poll", key: "2️⃣" } },
    };
    // The poll, the bot's message, seen in sync (the fake server has no event to show for it).
    await f.feedTimeline(room, [{ ...fakeMessage(FAKE_BOT_USER, "Lunch?"), event_id: "$poll" }]);
    await f.feedTimeline(room, [
      soup,
      {
        type: "m.room.redaction",
        event_id: "$r",
        sender: bob,
        origin_server_ts: Date.now(),
        redacts: "$soup",
        content: {},
      },
    ]);
    await f.feedTimeline(room, [fakeMessage("@alice:x.example", "!results")]);
    assert.equal(f.sent.at(-1)?.content.body, "**Lunch?**\n1️⃣ pizza: 1\n2️⃣ soup: 0");
  } finally {
    await bot.stop();
  }
});
