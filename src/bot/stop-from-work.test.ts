// `bot.stop()` waits for the handlers and jobs under way. Awaited from one of them (a `!quit`
// command, a job that ends the bot), it waited for itself: the bot hung for ever, its sync
// stalled. From the bot's own work it now lets that work return, then stops.
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../index.ts";
import { Bot } from "./bot.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";
import { FakeClock } from "./testing/fake-clock.ts";

/** Settled within `turns` turns of the event loop (counted, not timed): a deadlock never settles. */
async function settlesWithin<T>(p: Promise<T>, turns = 10_000): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < turns && !settled; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

test("a command that awaits bot.stop() returns, and the bot stops", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client, logger: silentLogger });
  let returned = false;
  bot.command("quit", {}, async (ctx) => {
    await ctx.reply("bye");
    await bot.stop();
    returned = true;
  });
  await bot.start();
  await f.feed({});
  const fed = f.feedTimeline("!r:x", [fakeMember(FAKE_BOT_USER, "join"), fakeMessage("@a:x", "!quit")]);
  assert.equal(await settlesWithin(fed), true, "the sync response's handling finished");
  assert.equal(returned, true);
  assert.equal(await settlesWithin(bot.stop()), true);
  assert.equal(bot.isRunning, false);
  assert.deepEqual(
    f.sent.map((s) => s.content.body),
    ["bye"],
  );
  await f.client.close();
});

test("a job that awaits bot.stop() returns, and the bot stops", async () => {
  const f = await fakeBotClient();
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 30));
  const bot = new Bot({ client: f.client, clock, logger: silentLogger });
  let returned = false;
  bot.schedule("last", "* * * * *", async () => {
    await bot.stop();
    returned = true;
  });
  await bot.start();
  await f.feed({});
  assert.equal(await settlesWithin(clock.advance(60_000, () => bot.scheduler.idle())), true);
  assert.equal(returned, true);
  assert.equal(await settlesWithin(bot.stop()), true);
  assert.equal(bot.isRunning, false);
  await f.client.close();
});
