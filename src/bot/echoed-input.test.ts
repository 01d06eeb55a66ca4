// What the bot says back about a user's input quotes a bounded, well-formed, one-line piece of it:
// a usage error, `help` for a command that does not exist.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

test("help for an unknown command and usage errors quote little of what was typed", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  bot.command("n", { args: { n: arg.int() } }, () => undefined);
  await bot.start();
  await f.feed({});
  const alice = "@alice:fake.example";
  const long = `"${"line\n\u202e".repeat(600)}"`; // one quoted token, 3 600 characters
  await f.feedTimeline("!r:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(alice, `!help ${long}`),
    fakeMessage(alice, `!n ${"9".repeat(39)}😀`),
  ]);
  const bodies = f.sent.map((s) => String(s.content.body));
  assert.equal(bodies.length, 2);
  assert.match(bodies[0] ?? "", /^No command "line\\u000a\\u202eline/);
  for (const body of bodies) {
    assert.ok(body.length < 300, `bounded: ${body.length}`);
    assert.ok(body.isWellFormed());
    assert.doesNotMatch(body, /\u202e/);
  }
  await bot.stop();
});
