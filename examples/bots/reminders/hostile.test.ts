// The reminders bot against its users: a reminder for a room the bot can no longer post to (its
// user removed the bot) does not hold up everyone else's.
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "keyroom";
import { Bot, installSkill } from "keyroom/bot";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage, startBotTest } from "keyroom/bot/testing";
import reminders, { MAX_REMINDER_TEXT, MAX_REMINDERS_PER_USER } from "./skills/reminders.ts";

test("a reminder the bot cannot post does not block the reminders due after it", async () => {
  const t = await startBotTest({ skills: [reminders] });
  try {
    const alice = await t.user("alice");
    const mallory = await t.user("mallory");
    // Mallory's own room with the bot: a reminder there, then the bot is kicked out.
    const own = await mallory.client.createRoom({ name: "mine", invite: [t.bot.userId], encrypted: false });
    await waitUntil(() => t.bot.client.getRoom(own)?.membership === "join");
    await mallory.send("!remind 1m gotcha", { roomId: own });
    assert.equal((await mallory.nextMessage({ roomId: own })).body, "OK, in 1m.");
    await mallory.client.kick(own, t.bot.userId);
    await waitUntil(() => t.bot.client.getRoom(own)?.membership === "leave");

    await alice.send("!remind 2m tea");
    assert.equal((await alice.nextMessage()).body, "OK, in 2m.");
    await t.advance("3m");
    assert.equal((await alice.nextMessage()).body, `⏰ ${alice.userId}: tea`);
    await t.advance("1m");
    await alice.send("!reminders");
    assert.equal((await alice.nextMessage()).body, "No reminders pending.");
  } finally {
    await t.close();
  }
});

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(check());
}

test("one user cannot fill the reminders everyone shares", async () => {
  const t = await startBotTest({ skills: [reminders] });
  try {
    const alice = await t.user("alice");
    const mallory = await t.user("mallory");
    // Long reminders, then shorter ones, until the bot refuses: one account-data event holds them all.
    let last = "";
    for (const size of [4000, 300, 20]) {
      for (let i = 0; i < 20; i++) {
        await mallory.send(`!remind 30d ${"x".repeat(size)}`);
        const answer = await mallory.nextMessage();
        last = answer.eventId;
        if (answer.body !== "OK, in 30d.") break;
      }
    }
    await alice.skipPast(last);
    await alice.send("!remind 5m tea");
    assert.equal((await alice.nextMessage()).body, "OK, in 5m.");
  } finally {
    await t.close();
  }
});

test("a reminder's text stays text in the !reminders list: no hidden link", async () => {
  const t = await startBotTest({ skills: [reminders] });
  try {
    const alice = await t.user("alice");
    await alice.send("!remind 5m [Log in again](https://evil.example) **now**");
    assert.equal((await alice.nextMessage()).body, "OK, in 5m.");
    await alice.send("!reminders");
    const list = await alice.nextMessage();
    assert.equal(
      list.html,
      '<ul>\n<li>in 5m: [Log in again](<a href="https://evil.example">https://evil.example</a>) **now**</li>\n</ul>',
    );
  } finally {
    await t.close();
  }
});

test("a crowd whose reminders no longer fit the one event they share is told so, not 'Sorry, that failed'", async () => {
  // Fed through a client without a homeserver, so dozens of users cost nothing.
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  await installSkill(bot, reminders, undefined, silentLogger);
  await bot.start();
  await f.feed({});
  const room = "!crowd:fake.example";
  await f.feedTimeline(room, [fakeMember(FAKE_BOT_USER, "join")]);
  // Each reminder as long as allowed, in characters that take the most bytes.
  const text = "🦀".repeat(MAX_REMINDER_TEXT / 2);
  const answers = new Set<string>();
  for (let user = 0; user < 20; user++) {
    for (let i = 0; i < MAX_REMINDERS_PER_USER; i++) {
      await f.feedTimeline(room, [fakeMessage(`@user${user}:x.example`, `!remind 30d ${text}`)]);
      answers.add(String(f.sent.at(-1)?.content.body));
    }
  }
  assert.deepEqual([...answers].sort(), ["OK, in 30d.", "Too many reminders pending; try later."]);
  await bot.stop();
});
