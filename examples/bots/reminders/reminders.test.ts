// The reminders bot through the testing harness: a reminder set, the bot restarted (same device,
// state from account data), the fake clock moved on, the reminder posted once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startBotTest } from "keyroom/bot/testing";
import reminders from "./skills/reminders.ts";

test("reminders: !remind 5m tea, a restart, then the reminder after 5 minutes", async () => {
  const t = await startBotTest({ skills: [reminders] });
  try {
    const alice = await t.user("alice");
    await alice.send("!remind 5m tea");
    assert.equal((await alice.nextMessage()).body, "OK, in 5m.");
    await alice.send("!remind soon tea");
    assert.match(
      (await alice.nextMessage()).body,
      /^Usage: !remind <delay:duration> <text...>\n<delay>: expected a duration/,
    );

    const deviceId = t.bot.client.deviceId;
    await t.restartBot();
    assert.equal(t.bot.client.deviceId, deviceId, "the restart resumed the device");
    await alice.send("!reminders");
    assert.match((await alice.nextMessage()).body, /^- in 5m: tea$/);

    await t.advance("4m");
    await t.advance("1m");
    const reminder = await alice.nextMessage();
    assert.equal(reminder.body, `⏰ ${alice.userId}: tea`);
    assert.equal(reminder.encrypted, true);
    await t.advance("5m");
    await alice.send("!reminders");
    assert.equal((await alice.nextMessage()).body, "No reminders pending.", "posted once, then removed");
  } finally {
    await t.close();
  }
});
