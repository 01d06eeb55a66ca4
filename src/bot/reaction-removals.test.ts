// `onReactionRemoved`: a reaction the bot reported and then saw redacted is reported as removed,
// with its key, target and sender (the bot remembers them: a redacted reaction says nothing), and
// who removed it. The redaction names the reaction by the room version's field (top-level
// `redacts` before version 11, `content.redacts` from it: the other is free content), comes in the
// same response as the reaction or a later one, and counts only from a user of the reaction's
// sender's server or a moderator (`Room.mayRedact`). Fed through a client without a homeserver, so each response is exact; the encrypted
// round trip through the devserver is in bot.test.ts and the poll example.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClientEvent, JsonObject, RoomEvent } from "../index.ts";
import { Bot } from "./bot.ts";
import { MAX_REMEMBERED_REACTIONS } from "./reaction-records.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const ALICE = "@alice:fake.example";
const BOB = "@bob:fake.example";
const MOD = "@mod:fake.example";
/** A user of another server, power 0: may take back only their own reactions. */
const MALLORY = "@mallory:elsewhere.example";
const ROOM = "!r:fake.example";

let n = 0;
const ts = () => 1_800_000_000_000 + ++n;
function reaction(sender: string, target: string, key: string): JsonObject {
  return {
    type: "m.reaction",
    event_id: `$reaction${++n}`,
    sender,
    origin_server_ts: ts(),
    content: { "m.relates_to": { rel_type: "m.annotation", event_id: target, key } },
  };
}
/** A redaction of `target` as a room of `version` carries it (both fields, as servers send v11 ones). */
function redaction(
  sender: string,
  target: string,
  version: "10" | "11",
  fields: { top?: string; content?: string } = {},
): JsonObject {
  const top = fields.top ?? (version === "10" || fields.content === undefined ? target : undefined);
  const inContent = fields.content ?? (version === "11" ? target : undefined);
  return {
    type: "m.room.redaction",
    event_id: `$redaction${++n}`,
    sender,
    origin_server_ts: ts(),
    ...(top === undefined ? {} : { redacts: top }),
    content: inContent === undefined ? {} : { redacts: inContent },
  };
}
const state = (type: string, content: JsonObject, sender = ALICE): JsonObject => ({
  type,
  state_key: "",
  event_id: `$state${++n}`,
  sender,
  origin_server_ts: ts(),
  content,
});

/** A bot in a room of `version` created by Alice, `MOD` a moderator; what its handlers saw. */
async function removalsBot(version: "10" | "11") {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const seen: string[] = [];
  bot.onReaction((ctx) => void seen.push(`+ ${ctx.sender} ${ctx.key} on ${ctx.targetEventId}`));
  bot.onReactionRemoved((ctx) => {
    seen.push(`- ${ctx.reactionSender} ${ctx.key} on ${ctx.targetEventId} by ${ctx.sender}`);
    assert.equal(ctx.eventId, ctx.event.eventId);
    assert.equal(ctx.event.type, "m.room.redaction");
  });
  await bot.start();
  await f.feed({});
  const question = fakeMessage(ALICE, "lunch?");
  await f.feedTimeline(ROOM, [
    state("m.room.create", { room_version: version }),
    state("m.room.power_levels", { users: { [ALICE]: 100, [MOD]: 50, [FAKE_BOT_USER]: 50 }, redact: 50 }),
    fakeMember(FAKE_BOT_USER, "join"),
    question,
  ]);
  return { f, bot, seen, target: question.event_id as string };
}

for (const version of ["10", "11"] as const) {
  test(`room version ${version}: a removal in a later response and in the same one, with its key, target and sender`, async () => {
    const { f, bot, seen, target } = await removalsBot(version);
    const pizza = reaction(BOB, target, "🍕");
    await f.feedTimeline(ROOM, [pizza]);
    await f.feedTimeline(ROOM, [redaction(BOB, pizza.event_id as string, version)]);
    const soup = reaction(BOB, target, "🍲");
    await f.feedTimeline(ROOM, [soup, redaction(BOB, soup.event_id as string, version)]);
    assert.deepEqual(seen, [
      `+ ${BOB} 🍕 on ${target}`,
      `- ${BOB} 🍕 on ${target} by ${BOB}`,
      `+ ${BOB} 🍲 on ${target}`,
      `- ${BOB} 🍲 on ${target} by ${BOB}`,
    ]);
    await bot.stop();
  });
}

test("the redacted event is read from the room version's field only: the other is free content", async () => {
  for (const version of ["10", "11"] as const) {
    const { f, bot, seen, target } = await removalsBot(version);
    const vote = reaction(BOB, target, "👍");
    const own = fakeMessage(BOB, "my own message");
    await f.feedTimeline(ROOM, [vote, own]);
    // The field servers authorise by names Bob's own message; the other names Bob's vote.
    const id = vote.event_id as string;
    const ownId = own.event_id as string;
    const spoof =
      version === "10"
        ? redaction(BOB, id, version, { top: ownId, content: id })
        : redaction(BOB, id, version, { top: id, content: ownId });
    await f.feedTimeline(ROOM, [spoof]);
    assert.deepEqual(seen, [`+ ${BOB} 👍 on ${target}`], `version ${version}`);
    // Redacted for real: reported.
    await f.feedTimeline(ROOM, [
      redaction(BOB, id, version, version === "10" ? { top: id } : { content: id }),
    ]);
    assert.deepEqual(seen.at(-1), `- ${BOB} 👍 on ${target} by ${BOB}`);
    await bot.stop();
  }
});

test("only the reaction's sender, a user of its server or a moderator removes it; once; the bot's own removal is not reported", async () => {
  const { f, bot, seen, target } = await removalsBot("10");
  const byBob = reaction(BOB, target, "1");
  const byAlice = reaction(ALICE, target, "2");
  const third = reaction(ALICE, target, "3");
  await f.feedTimeline(ROOM, [byBob, byAlice, third]);
  seen.length = 0;
  // Mallory (power 0, another server) takes back Alice's reaction: a server would not apply it;
  // the reaction stands.
  await f.feedTimeline(ROOM, [redaction(MALLORY, byAlice.event_id as string, "10")]);
  assert.deepEqual(seen, []);
  // A moderator takes back Bob's: reported, with who removed it. Again: nothing (it is gone).
  await f.feedTimeline(ROOM, [redaction(MOD, byBob.event_id as string, "10")]);
  await f.feedTimeline(ROOM, [redaction(BOB, byBob.event_id as string, "10")]);
  // Alice's own: reported (it stood after Bob's attempt).
  await f.feedTimeline(ROOM, [redaction(ALICE, byAlice.event_id as string, "10")]);
  // The bot removes one itself: not reported, and gone (Alice's later redaction reports nothing).
  await f.feedTimeline(ROOM, [redaction(FAKE_BOT_USER, third.event_id as string, "10")]);
  await f.feedTimeline(ROOM, [redaction(ALICE, third.event_id as string, "10")]);
  // A redaction of a message, or of an event never seen: nothing.
  await f.feedTimeline(ROOM, [redaction(ALICE, target, "10"), redaction(ALICE, "$unknown", "10")]);
  assert.deepEqual(seen, [`- ${BOB} 1 on ${target} by ${MOD}`, `- ${ALICE} 2 on ${target} by ${ALICE}`]);
  await bot.stop();
});

test("ownMessagesOnly removals, a skill's scope, middleware around them, a handler missing: TypeError", async () => {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const own: string[] = [];
  const all: string[] = [];
  const around: string[] = [];
  bot.scope("s").onReactionRemoved({ ownMessagesOnly: true }, (ctx) => void own.push(ctx.key));
  bot.onReactionRemoved((ctx) => void all.push(ctx.key));
  bot.use(async (ctx, next) => {
    around.push(ctx.event.type);
    await next();
  });
  assert.throws(
    () => (bot.onReactionRemoved as (opts: object) => void)({ ownMessagesOnly: true }),
    (e: unknown) => e instanceof TypeError,
  );
  await bot.start();
  await f.feed({});
  const byAlice = fakeMessage(ALICE, "hi");
  const byBot = fakeMessage(FAKE_BOT_USER, "a poll");
  await f.feedTimeline(ROOM, [fakeMember(FAKE_BOT_USER, "join"), byAlice, byBot]);
  const onAlice = reaction(BOB, byAlice.event_id as string, "a");
  const onBot = reaction(BOB, byBot.event_id as string, "b");
  await f.feedTimeline(ROOM, [onAlice, onBot]);
  around.length = 0;
  // No create event: room version 1, the top-level `redacts`.
  await f.feedTimeline(ROOM, [
    redaction(BOB, onAlice.event_id as string, "10"),
    redaction(BOB, onBot.event_id as string, "10"),
  ]);
  assert.deepEqual(own, ["b"]);
  assert.deepEqual(all, ["a", "b"]);
  assert.deepEqual(around, ["m.room.redaction", "m.room.redaction"]);
  bot.removeScope("s");
  const again = reaction(BOB, byBot.event_id as string, "c");
  await f.feedTimeline(ROOM, [again]);
  await f.feedTimeline(ROOM, [redaction(BOB, again.event_id as string, "10")]);
  assert.deepEqual(own, ["b"]);
  assert.deepEqual(all, ["a", "b", "c"]);
  await bot.stop();
});

test("a reaction readable only after its removal (its key came late) is reported neither way", async () => {
  const { f, bot, seen, target } = await removalsBot("10");
  const enc = {
    type: "m.room.encrypted",
    event_id: `$encrypted${++n}`,
    sender: BOB,
    origin_server_ts: Date.now(),
    content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AAAA", session_id: "s", sender_key: "k" },
  };
  await f.feedTimeline(ROOM, [enc, redaction(BOB, enc.event_id, "10")]);
  const ev: RoomEvent = {
    roomId: ROOM,
    eventId: enc.event_id,
    sender: BOB,
    type: "m.reaction",
    content: { "m.relates_to": { rel_type: "m.annotation", event_id: target, key: "👍" } },
    originServerTs: enc.origin_server_ts,
    raw: enc as unknown as ClientEvent,
    encryption: { decrypted: true },
  };
  const room = f.client.getRoom(ROOM);
  assert.ok(room);
  await f.client.emit("room.decrypted", room, ev);
  await f.feed({});
  assert.deepEqual(seen, []);
  await bot.stop();
});

test(`past MAX_REMEMBERED_REACTIONS (${MAX_REMEMBERED_REACTIONS}) reactions, the oldest one's removal is not reported`, async () => {
  const { f, bot, seen, target } = await removalsBot("10");
  const reactions = Array.from({ length: MAX_REMEMBERED_REACTIONS + 1 }, () => reaction(BOB, target, "x"));
  await f.feedTimeline(ROOM, reactions);
  seen.length = 0;
  await f.feedTimeline(ROOM, [
    redaction(BOB, reactions[0]?.event_id as string, "10"),
    redaction(BOB, reactions[1]?.event_id as string, "10"),
  ]);
  assert.deepEqual(seen, [`- ${BOB} x on ${target} by ${BOB}`]);
  await bot.stop();
});

test("IDs longer than an event ID are not remembered: a redaction naming a long string costs no memory", async () => {
  const { f, bot, seen, target } = await removalsBot("11");
  const before = bot.roomMemory().reactions;
  // From version 11 the redacted event is free content: anyone may send one naming a long string.
  const long = `$${"a".repeat(60_000)}`;
  await f.feedTimeline(ROOM, [redaction(BOB, long, "11", { content: long })]);
  // A reaction whose own event ID is past the bound (as a server of an old room version could send).
  await f.feedTimeline(ROOM, [{ ...reaction(BOB, target, "👍"), event_id: long }]);
  assert.equal(bot.roomMemory().reactions, before);
  assert.deepEqual(seen, [`+ ${BOB} 👍 on ${target}`]);
  await bot.stop();
});
