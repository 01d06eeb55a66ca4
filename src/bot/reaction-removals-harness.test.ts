// `onReactionRemoved` through the testing harness: users of the devserver react in an encrypted
// room (the reaction's key and target are in its ciphertext) and take their reactions back, or a
// moderator does; the bot reports each removal with the reaction's key, target and sender, and
// who removed it. In a room of version 10 (the redaction names the reaction at its top level) and
// of version 11 (in its content).
import assert from "node:assert/strict";
import { test } from "node:test";
import { scaledMs } from "../../test/support/budget.ts";
import type { Bot } from "./bot.ts";
import { DEFAULT_WAIT_MS, startBotTest } from "./testing/index.ts";

const setup = (bot: Bot) => {
  bot.onReaction((ctx) =>
    ctx.notice(`+ ${ctx.key} ${ctx.event.encryption?.decrypted === true ? "encrypted" : "plain"}`),
  );
  bot.onReactionRemoved((ctx) =>
    ctx.notice(
      `- ${ctx.key} on ${ctx.targetEventId} (${ctx.reactionEventId}) of ${ctx.reactionSender} by ${ctx.sender}`,
    ),
  );
};

for (const roomVersion of ["10", "11"]) {
  test(`room version ${roomVersion}: removed reactions are reported, by their sender or a moderator`, async () => {
    const t = await startBotTest({ setup, roomVersion, waitMs: scaledMs(DEFAULT_WAIT_MS) });
    try {
      const alice = await t.user("alice"); // made the room: a moderator
      const bob = await t.user("bob");
      assert.equal(alice.client.getRoom(t.roomId)?.roomVersion, roomVersion);
      const message = await alice.send("lunch?");
      const vote = await bob.react(message, "🍕");
      assert.equal((await alice.nextMessage()).body, "+ 🍕 encrypted");
      await bob.redact(vote);
      assert.equal(
        (await alice.nextMessage()).body,
        `- 🍕 on ${message} (${vote}) of ${bob.userId} by ${bob.userId}`,
      );
      const again = await bob.react(message, "🍲");
      assert.equal((await alice.nextMessage()).body, "+ 🍲 encrypted");
      await alice.redact(again, { reason: "off topic" });
      assert.equal(
        (await alice.nextMessage()).body,
        `- 🍲 on ${message} (${again}) of ${bob.userId} by ${alice.userId}`,
      );
      // A redacted message is no reaction: nothing reported; the next answer is the reaction's.
      await alice.redact(message);
      await alice.react(await alice.send("dinner?"), "🥗");
      assert.equal((await alice.nextMessage()).body, "+ 🥗 encrypted");
    } finally {
      await t.close();
    }
  });
}
