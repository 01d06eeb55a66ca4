// History is not handled as new: what a server sends of a room from before the bot joined it (a
// newly joined room's recent timeline, as Synapse sends it under `shared` history visibility),
// and what a first sync delivers. Fed through a client without a homeserver
// (`testing/fake-client.ts`, `fakeBotClient` of `keyroom/bot/testing`), so each response is exactly the one a server could send.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

async function echoBot() {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client, invites: "anyone" });
  bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text));
  bot.onMember((change) => change.sender.notice(`member ${change.userId} ${change.membership}`));
  await bot.start();
  return { f, bot, bodies: () => f.sent.map((s) => s.content.body) };
}

const undecryptable = (sender: string) => ({
  type: "m.room.encrypted",
  event_id: `$enc${Math.random().toString(36).slice(2)}`,
  sender,
  origin_server_ts: 1_700_000_000_000,
  content: {
    algorithm: "m.megolm.v1.aes-sha2",
    ciphertext: "AAAA",
    session_id: "s",
    sender_key: "k",
    device_id: "D",
  },
});

test("commands sent before the bot joined are not run when the join's timeline brings them", async () => {
  const { f, bot, bodies } = await echoBot();
  await f.feed({}); // the first sync: nothing yet
  const room = "!joined:fake.example";
  const early = undecryptable("@alice:fake.example");
  await f.feedTimeline(
    room,
    [
      fakeMember("@alice:fake.example", "join"),
      fakeMessage("@alice:fake.example", "!echo sent before the bot was invited"),
      early,
      fakeMember(FAKE_BOT_USER, "invite", "@alice:fake.example"),
      fakeMessage("@alice:fake.example", "!echo sent while the bot was invited"),
      fakeMember(FAKE_BOT_USER, "join"),
      fakeMessage("@alice:fake.example", "!echo after the join"),
      fakeMember("@bob:fake.example", "join"),
    ],
    { limited: true },
  );
  assert.deepEqual(bodies(), ["after the join", "member @bob:fake.example join"]);
  // An undecryptable one is recorded as handled: its key arriving later does not run it.
  assert.equal(bot.local.isHandled(early.event_id), true);
  // The next response is news again.
  await f.feedTimeline(room, [fakeMessage("@alice:fake.example", "!echo later")]);
  assert.deepEqual(bodies(), ["after the join", "member @bob:fake.example join", "later"]);
  await bot.stop();
});

test("a room whose join is in the state block (not the timeline) handles its timeline", async () => {
  const { f, bot, bodies } = await echoBot();
  await f.feed({});
  const room = "!statejoin:fake.example";
  await f.feed({
    rooms: {
      join: {
        [room]: {
          state: { events: [fakeMember(FAKE_BOT_USER, "join")] },
          timeline: { events: [fakeMessage("@alice:fake.example", "!echo one")], limited: false },
        },
      },
    },
  });
  await f.feedTimeline(room, [fakeMessage("@alice:fake.example", "!echo two")]);
  assert.deepEqual(bodies(), ["one", "two"]);
  await bot.stop();
});

test("a first sync's undecryptable history is recorded as handled", async () => {
  const { f, bot, bodies } = await echoBot();
  const old = undecryptable("@alice:fake.example");
  const timeline = [fakeMember(FAKE_BOT_USER, "join"), fakeMessage("@alice:fake.example", "!echo old"), old];
  await f.syncOnce({ rooms: { join: { "!old:fake.example": { timeline: { events: timeline } } } } });
  assert.deepEqual(bodies(), []);
  assert.equal(bot.local.isHandled(old.event_id), true);
  await bot.stop();
});

test("history before the join is not run when another server's clock is ahead of the join", async () => {
  const { f, bot, bodies } = await echoBot();
  await f.feed({});
  const room = "!skewed:fake.example";
  const join = fakeMember(FAKE_BOT_USER, "join");
  // Sent before the bot joined, stamped by a server whose clock is a minute ahead.
  const early = fakeMessage("@remote:ahead.example", "!echo sent before the join");
  early.origin_server_ts = (join.origin_server_ts as number) + 60_000;
  await f.feedTimeline(room, [early, join, fakeMessage("@alice:fake.example", "!echo after the join")], {
    limited: true,
  });
  assert.deepEqual(bodies(), ["after the join"]);
  await bot.stop();
});

test("a command after a join in the state block is run when its server's clock is behind", async () => {
  const { f, bot, bodies } = await echoBot();
  await f.feed({});
  const room = "!behind:fake.example";
  const join = fakeMember(FAKE_BOT_USER, "join");
  const late = fakeMessage("@remote:behind.example", "!echo sent after the join");
  late.origin_server_ts = (join.origin_server_ts as number) - 60_000;
  await f.feed({
    rooms: { join: { [room]: { state: { events: [join] }, timeline: { events: [late], limited: false } } } },
  });
  assert.deepEqual(bodies(), ["sent after the join"]);
  await bot.stop();
});

test("history before the join is not run when the bot is removed again in the same response", async () => {
  const { f, bot, bodies } = await echoBot();
  await f.feed({});
  const room = "!kicked:fake.example";
  await f.feedInvite(room, "@alice:fake.example");
  await f.feed({
    rooms: {
      leave: {
        [room]: {
          timeline: {
            limited: true,
            prev_batch: "p",
            events: [
              fakeMessage("@alice:fake.example", "!echo sent before the join"),
              fakeMember(FAKE_BOT_USER, "join"),
              fakeMessage("@alice:fake.example", "!echo after the join"),
              fakeMember(FAKE_BOT_USER, "leave", "@alice:fake.example"),
            ],
          },
        },
      },
    },
  });
  assert.deepEqual(bodies(), ["after the join"]);
  await bot.stop();
});

test("membership changes are news in rooms the first sync or a state-block join brought", async () => {
  const { f, bot, bodies } = await echoBot();
  const first = "!first:fake.example";
  const later = "!statejoin:fake.example";
  await f.syncOnce({
    rooms: {
      join: { [first]: { state: { events: [fakeMember(FAKE_BOT_USER, "join")] }, timeline: { events: [] } } },
    },
  });
  await f.feed({
    rooms: {
      join: {
        [later]: { state: { events: [fakeMember(FAKE_BOT_USER, "join")] }, timeline: { events: [] } },
      },
    },
  });
  await f.feedTimeline(first, [fakeMember("@bob:fake.example", "join")]);
  await f.feedTimeline(later, [fakeMember("@carol:fake.example", "join")]);
  assert.deepEqual(bodies(), ["member @bob:fake.example join", "member @carol:fake.example join"]);
  await bot.stop();
});
