// The framework through its own testing harness (devserver in-process, encrypted room): each
// handler kind, the middleware, the replies, state across a room upgrade, and the error boundary.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { budget, scaledMs } from "../../test/support/budget.ts";
import type { RoomEvent } from "../index.ts";
import type { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import type { StateHandle } from "./state.ts";
import { type BotTest, type BotTestUser, DEFAULT_WAIT_MS, startBotTest } from "./testing/index.ts";

describe("bot framework (harness)", () => {
  let t: BotTest;
  let alice: BotTestUser;
  let bob: BotTestUser;
  let counter: StateHandle<number>;
  const failures: unknown[] = [];

  const setup = (bot: Bot) => {
    counter = bot.state.define<number>("counter", {
      version: 2,
      initial: () => 0,
      validate: (v): v is number => typeof v === "number",
      migrate: (old) =>
        typeof old === "object" && old !== null ? Number((old as { n?: unknown }).n) || 0 : 0,
    });
    bot.command("count", { help: "count in this room" }, async (ctx) => {
      const n = await ctx.roomState(counter).update((v) => v + 1);
      await ctx.reply(`count ${n}`);
    });
    bot.command("secret", { ownerOnly: true }, (ctx) => ctx.reply("owner stuff"));
    bot.command("vip", { verifiedOnly: true }, (ctx) => ctx.reply("verified stuff"));
    bot.command("boom", {}, () => {
      throw new Error("kaboom");
    });
    bot.command("md", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.markdown(text));
    bot.command("thread", {}, (ctx) => ctx.replyInThread("in a thread"));
    bot.command("edit", {}, async (ctx) => {
      const id = await ctx.reply("draft");
      await ctx.edit(id, "final");
    });
    bot.command("file", {}, (ctx) =>
      ctx.sendFile(new TextEncoder().encode("file body"), { filename: "a.txt", contentType: "text/plain" }),
    );
    bot.hears(/\bping\b/i, (ctx) => ctx.reply("pong"));
    bot.onMention((ctx) => ctx.reply(`you called, ${ctx.sender}?`));
    bot.onReaction((ctx) => ctx.reply(`reaction ${ctx.key}`));
    bot.onMember((change) =>
      change.membership === "join" && change.previous !== "join"
        ? change.sender.notice(`welcome ${change.userId}`)
        : undefined,
    );
    bot.client.on("error", (e) => void failures.push(e));
  };

  before(async () => {
    t = await startBotTest({
      waitMs: scaledMs(DEFAULT_WAIT_MS), // set-up steps and nextMessage: a busy machine is not a failure
      setup,
      config: { rateLimit: { perMinute: 2, burst: 3 } },
    });
    alice = await t.user("alice");
    bob = await t.user("bob");
    assert.equal((await alice.nextMessage()).body, `welcome ${bob.userId}`, "membership handler");
  });
  after(async () => {
    await t.close();
  });

  it("patterns, mentions, reactions, Markdown, threads, edits and files", async () => {
    await alice.send("anyone there? PING");
    assert.equal((await alice.nextMessage()).body, "pong");
    await alice.send(`hey ${t.bot.userId}`);
    assert.equal((await alice.nextMessage()).body, `you called, ${alice.userId}?`);
    const id = await alice.send("something");
    await alice.react(id, "🎉");
    assert.equal((await alice.nextMessage()).body, "reaction 🎉");
    await alice.send("!md *hi* <b>x</b>");
    const md = await alice.nextMessage();
    assert.equal(md.html, "<em>hi</em> &lt;b&gt;x&lt;/b&gt;");
    assert.equal(md.body, "*hi* <b>x</b>");
    await t.advance("10m"); // a full rate-limit bucket again
    const root = await alice.send("!thread");
    const threaded = await alice.nextMessage();
    assert.deepEqual(threaded.event.content["m.relates_to"], {
      rel_type: "m.thread",
      event_id: root,
      is_falling_back: false,
      "m.in_reply_to": { event_id: root },
    });
    await alice.send("!edit");
    const draft = await alice.nextMessage();
    assert.equal(draft.body, "draft");
    const edit = await waitFor(alice, (ev) => ev.content["m.new_content"] !== undefined);
    assert.deepEqual(edit.content["m.relates_to"], { rel_type: "m.replace", event_id: draft.eventId });
    await alice.send("!file");
    const file = await alice.nextMessage();
    assert.ok(file.event.content.file !== undefined, "an encrypted attachment in an encrypted room");
    assert.equal(
      new TextDecoder().decode(await alice.client.downloadAttachment(file.event.content)),
      "file body",
    );
  });

  it("owner-only and verified-only commands; the error boundary answers and the bot goes on", async () => {
    await t.advance("10m");
    await alice.send("!secret");
    assert.equal((await alice.nextMessage()).body, "!secret is for the bot's owners only.");
    await alice.send("!vip");
    assert.equal(
      (await alice.nextMessage()).body,
      "!vip only answers verified devices: verify with the bot first.",
    );
    await t.advance("10m");
    await alice.send("!boom");
    assert.match((await alice.nextMessage()).body, /^Sorry, that failed \(ref .{8}\)\.$/);
    await alice.send("!nosuchcommand");
    await alice.send("!help count");
    const help = await alice.nextMessage();
    assert.equal(help.body, "!count\ncount in this room", "unknown commands are ignored");
    await bob.skipPast(help.eventId);
  });

  it("per-user rate limits answer once, then stay quiet", async () => {
    // alice used her burst above; bob has his own.
    for (let i = 0; i < 4; i++) await bob.send("!count");
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await bob.nextMessage()).body);
    assert.deepEqual(bodies.slice(0, 3), ["count 1", "count 2", "count 3"]);
    assert.match(bodies[3] ?? "", /^Slow down: try again in \d+ s\.$/);
    const refused = await bob.send("!count");
    await waitUntil(() => t.bot.local.isHandled(refused));
    await t.advance("30s");
    await bob.send("!count");
    assert.equal((await bob.nextMessage()).body, "count 4", "one refused silently, then a token came back");
  });

  it("follows a room upgrade, carrying the room's state", async () => {
    const oldRoom = t.roomId;
    assert.equal(counter.room(oldRoom).get(), 4);
    const newRoom = await alice.client.upgradeRoom(oldRoom, "10");
    // The successor is private, as the room was: its members are invited (as Element does).
    await alice.client.invite(newRoom, t.bot.userId);
    await alice.client.invite(newRoom, bob.userId);
    await waitUntil(() => t.bot.client.getRoom(newRoom)?.membership === "join");
    await waitUntil(() => bob.client.getRoom(newRoom)?.membership === "invite");
    await bob.client.joinRoom(newRoom);
    await waitUntil(() => bob.client.getRoom(newRoom)?.getMember(t.bot.userId)?.membership === "join");
    await waitUntil(() => counter.room(newRoom).get() === 4);
    await t.advance("1m");
    await bob.send("!count", { roomId: newRoom });
    assert.equal((await bob.nextMessage({ roomId: newRoom })).body, `welcome ${bob.userId}`);
    const answer = await bob.nextMessage({ roomId: newRoom });
    assert.equal(answer.body, "count 5");
    assert.equal(answer.encrypted, true, "the successor is encrypted too");
    assert.deepEqual(failures, []);
  });
});

async function waitUntil(check: () => boolean): Promise<void> {
  const left = budget(DEFAULT_WAIT_MS);
  while (!check()) {
    if (left.over()) throw new Error(`condition not met in ${left.spentMs()} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function waitFor(user: BotTestUser, match: (ev: RoomEvent) => boolean): Promise<RoomEvent> {
  return new Promise((resolve) => {
    const off = user.client.on("room.event", (_room, ev) => {
      if (match(ev)) {
        off();
        resolve(ev);
      }
    });
  });
}
