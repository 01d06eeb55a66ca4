// Which messages can run a command or a `hears` pattern: `m.text` only by default (maubot's
// choice), so `/me !deploy` (an emote about a command) runs nothing, nor does a file whose name
// starts with the prefix; a handler's `msgtypes` accepts others, never `m.notice`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const ALICE = "@alice:fake.example";

test("commands and hears answer m.text only, unless their msgtypes say otherwise", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const ran: string[] = [];
  bot.command("echo", { args: { text: arg.rest() } }, (_ctx, { text }) => void ran.push(`echo ${text}`));
  bot.command(
    "shrug",
    { msgtypes: ["m.text", "m.emote"] },
    (ctx) => void ran.push(`shrug ${ctx.event.content.msgtype}`),
  );
  bot.hears(/hello/, (ctx) => void ran.push(`hears hello ${ctx.event.content.msgtype}`));
  bot.hears(
    /waves/,
    { msgtypes: ["m.emote"] },
    (ctx) => void ran.push(`hears waves ${ctx.event.content.msgtype}`),
  );
  bot.onMessage((ctx) => void ran.push(`message ${ctx.body}`));
  await bot.start();
  await f.feed({});
  const emote = (body: string) => fakeMessage(ALICE, body, { msgtype: "m.emote" });
  await f.feedTimeline("!r:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    emote("!echo deploy"),
    fakeMessage(ALICE, "!echo for real"),
    fakeMessage(ALICE, "!echo file.png", { msgtype: "m.image", url: "mxc://fake.example/x" }),
    fakeMessage(ALICE, "!shrug", { msgtype: "m.notice" }),
    emote("!shrug"),
    emote("says hello"),
    fakeMessage(ALICE, "hello"),
    emote("waves"),
    fakeMessage(ALICE, "waves"),
  ]);
  assert.deepEqual(ran, [
    // Not commands: plain messages.
    "message !echo deploy",
    "echo for real",
    "message !echo file.png",
    // The notice is not handled at all.
    "shrug m.emote",
    "message says hello",
    "hears hello m.text",
    "message hello",
    "hears waves m.emote",
    "message waves",
    "message waves",
  ]);
  await bot.stop();
});

test("msgtypes naming m.notice, or none, is refused", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const refused = (fn: () => void) => assert.throws(fn, (e: unknown) => e instanceof RangeError);
  refused(() => bot.command("a", { msgtypes: ["m.text", "m.notice"] }, () => {}));
  refused(() => bot.command("b", { msgtypes: [] }, () => {}));
  refused(() => bot.hears(/x/, { msgtypes: ["m.notice"] }, () => {}));
  refused(() => bot.scope("s").hears(/x/, { msgtypes: [] }, () => {}));
  assert.deepEqual(bot.commandNames, ["help"]);
});
