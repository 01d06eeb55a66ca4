// The webhook notifier: a POST with the secret lands in the room as a Markdown notice; a wrong
// secret, an unknown hook and a room not allowed are refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createBotLogger, startWebhookServer } from "keyroom/bot";
import { startBotTest } from "keyroom/bot/testing";
import notify, { MAX_NOTIFY_TEXT } from "./skills/notify.ts";

const SECRET = "a-webhook-secret-of-some-length";

test("webhook notifier: POST /hooks/notify posts into the room", async () => {
  let roomId = "";
  const t = await startBotTest({
    setup: async (bot) => {
      // The room is known only once the first user made it: install the skill when it is.
      bot.command("here", {}, async (ctx) => {
        roomId = ctx.roomId;
        const { installSkill } = await import("keyroom/bot");
        await installSkill(bot, notify, { room: ctx.roomId }, bot.logger);
        await ctx.reply("notifying here");
      });
    },
  });
  const server = await startWebhookServer(
    t.bot,
    { port: 0, secret: SECRET },
    createBotLogger({ format: "json", level: "error", write: () => {} }),
  );
  try {
    const alice = await t.user("alice");
    await alice.send("!here");
    assert.equal((await alice.nextMessage()).body, "notifying here");
    const post = (path: string, body: unknown, secret = SECRET) =>
      fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    assert.equal((await post("/hooks/notify", { text: "**deploy** done" })).status, 200);
    const note = await alice.nextMessage();
    assert.equal(note.msgtype, "m.notice");
    assert.equal(note.html, "<strong>deploy</strong> done");
    assert.equal(note.encrypted, true);
    // Longer than MAX_NOTIFY_TEXT with an emoji across the cut: posted cut before it, never with
    // half of it (a lone surrogate: a broken character, or a send the server refuses).
    const long = `${"x".repeat(MAX_NOTIFY_TEXT - 1)}😀 and more`;
    assert.equal((await post("/hooks/notify", { text: long })).status, 200);
    const cut = (await alice.nextMessage()).body;
    assert.ok(cut.isWellFormed() && cut === "x".repeat(MAX_NOTIFY_TEXT - 1), "cut before the emoji");
    assert.equal((await post("/hooks/notify", { text: "x" }, "a-wrong-secret-of-same-length")).status, 401);
    assert.equal((await post("/hooks/other", { text: "x" })).status, 404);
    assert.equal((await post("/hooks/notify", { text: "x", room: "!elsewhere:localhost" })).status, 500);
    assert.equal(roomId, t.roomId);
  } finally {
    await server.close();
    await t.close();
  }
});
