// The poll bot: two users vote with reactions (one changes their mind), `!results` counts them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startBotTest } from "keyroom/bot/testing";
import poll from "./skills/poll.ts";

test("poll: votes are counted from reactions, the latest per user", async () => {
  const t = await startBotTest({ skills: [poll] });
  try {
    const alice = await t.user("alice");
    const bob = await t.user("bob");
    await alice.send("!poll Lunch? | pizza | soup");
    const question = await alice.nextMessage();
    assert.match(question.html ?? "", /<strong>Lunch\?<\/strong>/);
    await bob.nextMessage();
    await alice.react(question.eventId, "2️⃣");
    await bob.react(question.eventId, "2️⃣");
    await bob.react(question.eventId, "1️⃣");
    await alice.send("!results");
    const results = await alice.nextMessage();
    assert.equal(results.body, "**Lunch?**\n1️⃣ pizza: 1\n2️⃣ soup: 1");
    await alice.send("!poll only one option");
    assert.match((await alice.nextMessage()).body, /^Usage: !poll QUESTION/);
  } finally {
    await t.close();
  }
});
