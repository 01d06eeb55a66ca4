// The poll bot: two users vote with reactions (one changes their mind), `!results` counts them;
// votes taken back (by the voter, or by a moderator) no longer count, and a voter's earlier
// reaction still standing counts again. A poll stored by the skill's first version (one option per
// voter) or its second (no reaction IDs) is read and counted on; a vote taken back after a
// restart of the bot is counted out (the state keeps each vote's reaction ID; a vote stored by
// version 2 gets its ID from the poll's reactions still standing, `/relations`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "keyroom";
import { Bot, installSkill, STATE_EVENT_PREFIX } from "keyroom/bot";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage, startBotTest } from "keyroom/bot/testing";
import poll from "./skills/poll.ts";

/** Alice (who made the room: a moderator) and Bob; Alice's "Lunch?" poll; `results` asks for the count. */
async function lunchPoll(t: Awaited<ReturnType<typeof startBotTest>>) {
  const alice = await t.user("alice");
  const bob = await t.user("bob");
  await alice.send("!poll Lunch? | pizza | soup");
  const question = await alice.nextMessage();
  await bob.nextMessage();
  const results = async () => {
    await alice.send("!results");
    return (await alice.nextMessage()).body;
  };
  return { alice, bob, question, results };
}

test("poll: votes are counted from reactions, the latest standing one per user", async () => {
  const t = await startBotTest({ skills: [poll] });
  try {
    const { alice, bob, question, results } = await lunchPoll(t);
    assert.match(question.html ?? "", /<strong>Lunch\?<\/strong>/);
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

test("poll: a vote taken back after a restart of the bot is counted out", async () => {
  const t = await startBotTest({ skills: [poll] });
  try {
    const { bob, alice, question, results } = await lunchPoll(t);
    const bobSoup = await bob.react(question.eventId, "2️⃣");
    const alicePizza = await alice.react(question.eventId, "1️⃣");
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 1\n2️⃣ soup: 1");
    // The bot forgets the reactions it saw; the poll's state keeps each vote's reaction ID.
    await t.restartBot();
    await bob.redact(bobSoup);
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 1\n2️⃣ soup: 0");
    // A moderator's removal counts too; once, though both onReactionRemoved and onRedaction see it.
    const bobPizza = await bob.react(question.eventId, "1️⃣");
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 2\n2️⃣ soup: 0");
    await alice.redact(bobPizza);
    await alice.redact(alicePizza);
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 0\n2️⃣ soup: 0");
  } finally {
    await t.close();
  }
});

test("poll: a vote stored by version 2 (no reaction ID) taken back after a restart is counted out", async () => {
  const t = await startBotTest({ skills: [poll] });
  try {
    const { bob, alice, question, results } = await lunchPoll(t);
    const bobSoup = await bob.react(question.eventId, "2️⃣");
    const alicePizza = await alice.react(question.eventId, "1️⃣");
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 1\n2️⃣ soup: 1");
    // The poll as version 2 stored it: each voter's options, no reaction IDs; the bot restarts
    // on it once its sync has it (it forgets the reactions it saw).
    const type = `${STATE_EVENT_PREFIX}poll`;
    const value = {
      eventId: question.eventId,
      question: "Lunch?",
      options: ["pizza", "soup"],
      votes: { [bob.userId]: [1], [alice.userId]: [0] },
    };
    const stored = new Promise<void>((resolve) => {
      t.bot.client.on("room.accountData", (_room, ev) => {
        if (ev.type === type && (ev.content as { version?: unknown }).version === 2) resolve();
      });
    });
    await t.bot.client.setRoomAccountData(t.roomId, type, { version: 2, value });
    await stored;
    await t.restartBot();
    // Bob takes back his soup: the bot does not know the reaction, nor does the vote name it.
    await bob.redact(bobSoup);
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 1\n2️⃣ soup: 0");
    // Alice's vote, still standing, was found again with its reaction ID: taken back, it goes too.
    await t.restartBot();
    await alice.redact(alicePizza);
    assert.equal(await results(), "**Lunch?**\n1️⃣ pizza: 0\n2️⃣ soup: 0");
  } finally {
    await t.close();
  }
});

for (const version of [1, 2]) {
  test(`poll: a poll stored by version ${version} of the skill is counted on`, async () => {
    const f = await fakeBotClient();
    const bot = new Bot({ client: f.client });
    await installSkill(bot, poll, undefined, silentLogger);
    await bot.start();
    try {
      await f.feed({});
      const room = "!poll:fake.example";
      const bob = "@bob:x.example";
      // Version 1 kept one option per voter, version 2 the options of their standing reactions.
      const votes = { [bob]: version === 1 ? 0 : [0] };
      const old = { eventId: "$poll", question: "Lunch?", options: ["pizza", "soup"], votes };
      await f.feed({
        rooms: {
          join: {
            [room]: {
              timeline: { events: [fakeMember(FAKE_BOT_USER, "join")], limited: false },
              account_data: {
                events: [{ type: `${STATE_EVENT_PREFIX}poll`, content: { version, value: old } }],
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
}
