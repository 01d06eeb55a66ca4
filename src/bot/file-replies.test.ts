// A file the bot sends back may be named after a user's text: like every other reply, it goes out
// with lone surrogates replaced by U+FFFD instead of being refused after its upload.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

test("a file reply named after a user's text with a lone surrogate is sent, named with U+FFFD", async () => {
  const f = await fakeBotClient();
  const uploads: string[] = [];
  // The fake server keeps no media: answer uploads here.
  f.client.uploadMedia = async () => {
    uploads.push("up");
    return `mxc://fake.example/up${uploads.length}`;
  };
  const bot = new Bot({ client: f.client });
  const failures: unknown[] = [];
  bot.client.on("error", (e) => void failures.push(e));
  bot.command("file", { args: { name: arg.rest() } }, (ctx, { name }) =>
    ctx.sendFile(new Uint8Array([1, 2, 3]), { filename: `${name}.txt`, contentType: "text/plain" }),
  );
  await bot.start();
  await f.feed({});
  await f.feedTimeline("!r:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage("@alice:fake.example", "!file notes\ud800"),
  ]);
  const files = f.sent.filter((s) => s.type === "m.room.message" && s.content.msgtype === "m.file");
  assert.equal(files.length, 1, `sent: ${JSON.stringify(f.sent.map((s) => s.content.body))}`);
  assert.equal(files[0]?.content.body, "notes\ufffd.txt");
  assert.equal(files[0]?.content.filename, "notes\ufffd.txt");
  assert.equal(uploads.length, 1);
  assert.deepEqual(failures, []);
  await bot.stop();
});
