// `onRedaction`: each redaction the server would apply reaches it, named by the room version's
// field (top-level `redacts` before version 11, `content.redacts` from it), with who redacted
// (`ctx.sender`) and, when the bot knows it (a reaction it remembers), whose event it was. A
// redactor neither of that sender's server nor allowed to redact others is ignored, as the client's
// rooms ignore one (`Room.mayRedact`); an event the bot does not
// know is reported with `redactedSender` undefined, for the handler to decide. In skills, under
// middleware and the error boundary. Fed through a client without a homeserver.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JsonObject } from "../index.ts";
import { Bot } from "./bot.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const ALICE = "@alice:fake.example";
const BOB = "@bob:fake.example";
/** A user of another server, power 0. */
const MALLORY = "@mallory:elsewhere.example";
const ROOM = "!r:fake.example";

let n = 0;
const ts = () => 1_800_000_000_000 + ++n;
const state = (type: string, content: JsonObject): JsonObject => ({
  type,
  state_key: "",
  event_id: `$state${++n}`,
  sender: ALICE,
  origin_server_ts: ts(),
  content,
});
const reaction = (sender: string, target: string, key: string): JsonObject => ({
  type: "m.reaction",
  event_id: `$reaction${++n}`,
  sender,
  origin_server_ts: ts(),
  content: { "m.relates_to": { rel_type: "m.annotation", event_id: target, key } },
});
/** A redaction of `target` as a room of `version` names it (`other`: what the other field says). */
function redaction(sender: string, target: string, version: "10" | "11", other?: string): JsonObject {
  const [top, inContent] = version === "10" ? [target, other] : [other, target];
  return {
    type: "m.room.redaction",
    event_id: `$redaction${++n}`,
    sender,
    origin_server_ts: ts(),
    ...(top === undefined ? {} : { redacts: top }),
    content: inContent === undefined ? {} : { redacts: inContent },
  };
}

/** A bot in a room of `version` made by Alice (a moderator; Bob is not); what `onRedaction` saw. */
async function redactionsBot(version: "10" | "11", setup?: (bot: Bot) => void) {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const seen: string[] = [];
  if (setup) setup(bot);
  else
    bot.onRedaction((ctx) => {
      assert.equal(ctx.event.type, "m.room.redaction");
      seen.push(`${ctx.redactedEventId} by ${ctx.sender} of ${ctx.redactedSender ?? "?"}`);
    });
  await bot.start();
  await f.feed({});
  const question = fakeMessage(ALICE, "lunch?");
  await f.feedTimeline(ROOM, [
    state("m.room.create", { room_version: version }),
    state("m.room.power_levels", { users: { [ALICE]: 100, [FAKE_BOT_USER]: 50 }, redact: 50 }),
    fakeMember(FAKE_BOT_USER, "join"),
    question,
  ]);
  return { f, bot, seen, target: question.event_id as string };
}

for (const version of ["10", "11"] as const) {
  test(`room version ${version}: redactions reach onRedaction by the version's field, unauthorised ones do not`, async () => {
    const { f, bot, seen, target } = await redactionsBot(version);
    try {
      const bobs = reaction(BOB, target, "👍");
      const alices = reaction(ALICE, target, "👎");
      await f.feedTimeline(ROOM, [bobs, alices]);
      const bobId = bobs.event_id as string;
      const aliceId = alices.event_id as string;
      // Mallory (power 0, another server) redacts Alice's reaction, which the bot knows: a server
      // would not apply it.
      await f.feedTimeline(ROOM, [redaction(MALLORY, aliceId, version)]);
      assert.deepEqual(seen, []);
      // His own reaction (the other field, free content, naming Alice's: not read).
      await f.feedTimeline(ROOM, [redaction(BOB, bobId, version, aliceId)]);
      // An event the bot does not know (from before a restart): reported, its sender unknown.
      await f.feedTimeline(ROOM, [redaction(BOB, "$before-restart", version)]);
      // A moderator's redaction of Bob's message.
      await f.feedTimeline(ROOM, [redaction(ALICE, target, version)]);
      assert.deepEqual(seen, [
        `${bobId} by ${BOB} of ${BOB}`,
        `$before-restart by ${BOB} of ?`,
        `${target} by ${ALICE} of ?`,
      ]);
    } finally {
      await bot.stop();
    }
  });
}

test("onRedaction runs in a skill's scope, under middleware and the error boundary", async () => {
  const order: string[] = [];
  const { f, bot } = await redactionsBot("10", (bot) => {
    bot.use(async (ctx, next) => {
      order.push(`mw ${ctx.event.type}`);
      await next();
    });
    bot.scope("s").onRedaction((ctx) => {
      order.push(`skill ${ctx.redactedEventId}`);
      throw new Error("boom");
    });
  });
  order.length = 0; // the question's message
  try {
    await f.feedTimeline(ROOM, [redaction(BOB, "$gone", "10")]);
    assert.deepEqual(order, ["mw m.room.redaction", "skill $gone"]);
    assert.match(String(f.sent.at(-1)?.content.body), /^Sorry, that failed \(ref /);
    bot.removeScope("s");
    await f.feedTimeline(ROOM, [redaction(BOB, "$gone2", "10")]);
    // No handler left: the redaction runs nothing, middleware neither.
    assert.deepEqual(order, ["mw m.room.redaction", "skill $gone"]);
  } finally {
    await bot.stop();
  }
});

test("the bot applies the client's rule (Room.mayRedact): a redactor of the sender's server counts, as for room state", async () => {
  const removed: string[] = [];
  const { f, bot, seen, target } = await redactionsBot("11", (bot) => {
    bot.onRedaction(
      (ctx) => void seen.push(`${ctx.redactedEventId} by ${ctx.sender} of ${ctx.redactedSender ?? "?"}`),
    );
    bot.onReactionRemoved((ctx) => void removed.push(`${ctx.key} of ${ctx.reactionSender} by ${ctx.sender}`));
  });
  try {
    const alices = reaction(ALICE, target, "👍");
    const topic = state("m.room.topic", { topic: "lunch" }); // Alice's
    await f.feedTimeline(ROOM, [alices, topic]);
    const aliceId = alices.event_id as string;
    // Mallory, of another server and power 0, may not; Bob, of Alice's server and power 0, may
    // (servers apply a redaction whose sender is of the redacted event's sender's server).
    await f.feedTimeline(ROOM, [redaction(MALLORY, aliceId, "11")]);
    const room = f.client.getRoom(ROOM);
    assert.equal(room?.mayRedact(MALLORY, ALICE), false);
    await f.feedTimeline(ROOM, [
      redaction(BOB, aliceId, "11"),
      redaction(BOB, topic.event_id as string, "11"),
    ]);
    assert.equal(room?.getState("m.room.topic")?.content.topic, undefined, "the room applied Bob's");
    assert.equal(room?.mayRedact(BOB, ALICE), true);
    assert.deepEqual(removed, [`👍 of ${ALICE} by ${BOB}`]);
    assert.deepEqual(seen, [`${aliceId} by ${BOB} of ${ALICE}`, `${topic.event_id} by ${BOB} of ?`]);
  } finally {
    await bot.stop();
  }
});
