// Events that are not someone talking to the bot now: edits (with or without `m.new_content`),
// redacted messages, notices (other bots), the bot's own messages, state events with a body.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

test("edits, redacted messages, notices, own messages and state events are not handled", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const seen: string[] = [];
  bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text));
  bot.onMessage((ctx) => void seen.push(ctx.body));
  await bot.start();
  await f.feed({});
  const alice = "@alice:fake.example";
  const redacted = fakeMessage(alice, "");
  redacted.content = {};
  redacted.unsigned = { redacted_because: { type: "m.room.redaction", sender: alice, content: {} } };
  const state = fakeMessage(alice, "!echo state");
  state.state_key = "";
  await f.feedTimeline("!r:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(alice, "* !echo edit", {
      "m.new_content": { msgtype: "m.text", body: "!echo edit" },
      "m.relates_to": { rel_type: "m.replace", event_id: "$x" },
    }),
    fakeMessage(alice, "* !echo bare edit", { "m.relates_to": { rel_type: "m.replace", event_id: "$x" } }),
    redacted,
    fakeMessage(alice, "!echo notice", { msgtype: "m.notice" }),
    fakeMessage(FAKE_BOT_USER, "!echo mine"),
    state,
    fakeMessage(alice, "plain"),
    fakeMessage(alice, "!echo real"),
  ]);
  assert.deepEqual(seen, ["plain"]);
  assert.deepEqual(
    f.sent.map((s) => s.content.body),
    ["real"],
  );
  await bot.stop();
});
