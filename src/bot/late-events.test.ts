// Events readable only long after they arrived (their room key came from the backup, a forward,
// days on) are not handled: `lateEvents.maxDelayMs`. Fed through a client without a homeserver
// (`testing/fake-client.ts`, `fakeBotClient` of `keyroom/bot/testing`): an encrypted event arrives undecryptable, the fake clock moves,
// and the client emits it again as `room.decrypted`, as it does when the key comes.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClientEvent, JsonObject, Logger, RoomEvent } from "../index.ts";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { LATE_NOTICE_INTERVAL_MS, MAX_AWAITED_EVENTS } from "./late-events.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";
import { FakeClock } from "./testing/fake-clock.ts";

const ROOM = "!late:fake.example";
const OWNER = "@owner:fake.example";
const ALICE = "@alice:fake.example";
const DAY = 86_400_000;
let n = 0;

async function lateBot(opts: { notify?: boolean; maxDelayMs?: number } = {}) {
  const f = await fakeBotClient();
  const clock = new FakeClock();
  const logs: { obj: unknown; msg: string | undefined }[] = [];
  const log = (obj?: unknown, msg?: string) => void logs.push({ obj, msg });
  const logger: Logger = { debug: log, info: log, warn: log, error: log };
  const bot = new Bot({ client: f.client, clock, logger, owners: [OWNER], lateEvents: opts });
  const ran: string[] = [];
  bot.command("deploy", { args: { what: arg.rest().optional() } }, () => void ran.push("deploy"));
  bot.hears(/deploy/, () => void ran.push("hears"));
  bot.onMention(() => void ran.push("mention"));
  bot.onMessage(() => void ran.push("message"));
  bot.onReaction(() => void ran.push("reaction"));
  bot.onMember((c) => void ran.push(`member ${c.userId}`));
  await bot.start();
  await f.feed({});
  await f.feedTimeline(ROOM, [fakeMember(FAKE_BOT_USER, "join")]);
  ran.length = 0;
  const notices = () => f.sent.filter((s) => s.content.msgtype === "m.notice").map((s) => s.content.body);

  /** An encrypted event from `sender` arrives now, unreadable. */
  const arrive = async (sender: string, roomId = ROOM): Promise<JsonObject> => {
    const enc = {
      type: "m.room.encrypted",
      event_id: `$late${++n}`,
      sender,
      origin_server_ts: clock.now(),
      content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AAAA", session_id: "s", sender_key: "k" },
    };
    await f.feedTimeline(roomId, [enc]);
    return enc;
  };
  /** Its key came: the client emits it decrypted, then a sync response settles the bot's work. */
  const decrypt = async (enc: JsonObject, type: string, content: JsonObject, roomId = ROOM) => {
    const ev: RoomEvent = {
      roomId,
      eventId: enc.event_id as string,
      sender: enc.sender as string,
      type,
      content,
      originServerTs: enc.origin_server_ts as number,
      raw: enc as unknown as ClientEvent,
      encryption: { decrypted: true },
    };
    const room = f.client.getRoom(roomId);
    assert.ok(room);
    await f.client.emit("room.decrypted", room, ev);
    await f.feed({});
  };
  const text = (body: string): JsonObject => ({ msgtype: "m.text", body });
  return { f, bot, clock, logs, ran, notices, arrive, decrypt, text };
}

test("a command whose key came days after it arrived is not run; the owner hears why, once", async () => {
  const t = await lateBot();
  const enc = await t.arrive(OWNER);
  const again = await t.arrive(OWNER);
  await t.clock.advance(3 * DAY);
  await t.decrypt(enc, "m.room.message", t.text("!deploy production"));
  assert.deepEqual(t.ran, []);
  assert.deepEqual(t.notices(), [
    "!deploy was not run: it reached me 3 days late (its key came late). Send it again if it still holds.",
  ]);
  assert.equal(t.bot.local.isHandled(enc.event_id as string), true, "not run later either");
  // One log line, with no text of the message in it.
  const lines = t.logs.filter((l) => l.msg?.includes("too late"));
  assert.equal(lines.length, 1);
  assert.ok(!JSON.stringify(lines[0]).includes("production"));
  assert.deepEqual(
    { ...(lines[0]?.obj as object), eventId: undefined },
    {
      roomId: ROOM,
      eventId: undefined,
      sender: OWNER,
      type: "m.room.message",
      delayMs: 3 * DAY,
      since: "arrival",
    },
  );
  // A second late command within the minute: not run, and no second notice.
  await t.decrypt(again, "m.room.message", t.text("!deploy"));
  assert.equal(t.notices().length, 1);
  // After the interval, the next late command is answered again.
  const third = await t.arrive(OWNER);
  await t.clock.advance(LATE_NOTICE_INTERVAL_MS + 20 * 60_000);
  await t.decrypt(third, "m.room.message", t.text("!deploy"));
  assert.deepEqual(t.ran, []);
  assert.equal(t.notices().length, 2);
  assert.match(t.notices()[1] as string, /reached me 21 min late/);
  await t.bot.stop();
});

test("every handler kind is held back for a late event; within the limit all run", async () => {
  const t = await lateBot();
  const late = [await t.arrive(ALICE), await t.arrive(ALICE), await t.arrive(ALICE)];
  await t.clock.advance(11 * 60_000);
  const [cmd, msg, reaction] = late as [JsonObject, JsonObject, JsonObject];
  await t.decrypt(cmd, "m.room.message", t.text("!deploy"));
  await t.decrypt(msg, "m.room.message", {
    ...t.text(`deploy now ${FAKE_BOT_USER}`),
    "m.mentions": { user_ids: [FAKE_BOT_USER] },
  });
  await t.decrypt(reaction, "m.reaction", {
    "m.relates_to": { rel_type: "m.annotation", event_id: "$x", key: "👍" },
  });
  assert.deepEqual(t.ran, []);
  assert.deepEqual(t.notices(), [], "Alice is no owner and the room is no direct chat");
  assert.equal(t.logs.filter((l) => l.msg?.includes("too late")).length, 3);
  // Keys that come within `maxDelayMs` of arrival: handled as usual.
  const prompt = [await t.arrive(ALICE), await t.arrive(ALICE), await t.arrive(ALICE)];
  await t.clock.advance(9 * 60_000);
  const [cmd2, msg2, reaction2] = prompt as [JsonObject, JsonObject, JsonObject];
  await t.decrypt(cmd2, "m.room.message", t.text("!deploy"));
  await t.decrypt(msg2, "m.room.message", {
    ...t.text(`deploy now ${FAKE_BOT_USER}`),
    "m.mentions": { user_ids: [FAKE_BOT_USER] },
  });
  await t.decrypt(reaction2, "m.reaction", {
    "m.relates_to": { rel_type: "m.annotation", event_id: "$x", key: "👍" },
  });
  assert.deepEqual(t.ran, ["deploy", "hears", "mention", "message", "reaction"]);
  await t.bot.stop();
});

test("membership changes are never judged late", async () => {
  const t = await lateBot({ maxDelayMs: 0 });
  await t.clock.advance(DAY);
  await t.f.feedTimeline(ROOM, [{ ...fakeMember("@bob:fake.example", "join"), origin_server_ts: 0 }]);
  assert.deepEqual(t.ran, ["member @bob:fake.example"]);
  await t.bot.stop();
});

test("an event readable on arrival runs whatever its server timestamp says", async () => {
  const t = await lateBot();
  await t.clock.advance(DAY);
  // A server whose clock is days behind (or a bot catching up after downtime): not lateness.
  await t.f.feedTimeline(ROOM, [
    { ...fakeMessage(ALICE, "!deploy"), origin_server_ts: t.clock.now() - 5 * DAY },
  ]);
  assert.deepEqual(t.ran, ["deploy"]);
  await t.bot.stop();
});

test("an event the bot did not see arrive is judged by its server timestamp", async () => {
  const t = await lateBot();
  // Not seen arriving (before a restart): origin_server_ts is all there is.
  const old = { event_id: "$unseen1", sender: ALICE, origin_server_ts: t.clock.now() - 2 * DAY };
  await t.decrypt(old, "m.room.message", t.text("!deploy"));
  assert.deepEqual(t.ran, []);
  const line = t.logs.find((l) => l.msg?.includes("too late"));
  assert.equal((line?.obj as { since?: string } | undefined)?.since, "origin_server_ts");
  const recent = { event_id: "$unseen2", sender: ALICE, origin_server_ts: t.clock.now() - 60_000 };
  await t.decrypt(recent, "m.room.message", t.text("!deploy"));
  assert.deepEqual(t.ran, ["deploy"]);
  await t.bot.stop();
});

test("a late command in a direct chat is answered; notify: false keeps the bot quiet", async () => {
  for (const notify of [true, false]) {
    const t = await lateBot({ notify });
    const dm = "!dm:fake.example";
    await t.f.feed({ account_data: { events: [{ type: "m.direct", content: { [ALICE]: [dm] } }] } });
    await t.f.feedTimeline(dm, [fakeMember(FAKE_BOT_USER, "join")]);
    const enc = await t.arrive(ALICE, dm);
    await t.clock.advance(DAY);
    await t.decrypt(enc, "m.room.message", t.text("!deploy"), dm);
    assert.deepEqual(t.ran, []);
    assert.equal(t.notices().length, notify ? 1 : 0);
    await t.bot.stop();
  }
});

test("arrival records are bounded", async () => {
  const t = await lateBot();
  const events = Array.from({ length: MAX_AWAITED_EVENTS + 5 }, (_, i) => ({
    type: "m.room.encrypted",
    event_id: `$many${i}`,
    sender: ALICE,
    origin_server_ts: t.clock.now(),
    content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AAAA", session_id: "s", sender_key: "k" },
  }));
  await t.f.feedTimeline(ROOM, events);
  assert.equal(t.bot.roomMemory().late, MAX_AWAITED_EVENTS);
  await t.bot.stop();
});

test("a fakeMessage handed to the bot as decrypted, on the machine's clock, is not judged late", async () => {
  // keyroom/bot/testing's events are sent "now": a bot author's test that emits `room.decrypted`
  // by hand (the bot never saw the event arrive) sees the handler run.
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client });
  const ran: string[] = [];
  bot.command("deploy", {}, () => void ran.push("deploy"));
  await bot.start();
  await f.feed({});
  await f.feedTimeline(ROOM, [fakeMember(FAKE_BOT_USER, "join")]);
  const raw = fakeMessage(ALICE, "!deploy");
  const room = f.client.getRoom(ROOM);
  assert.ok(room);
  await f.client.emit("room.decrypted", room, {
    roomId: ROOM,
    eventId: raw.event_id as string,
    sender: ALICE,
    type: "m.room.message",
    content: raw.content as JsonObject,
    originServerTs: raw.origin_server_ts as number,
    raw: raw as unknown as ClientEvent,
    encryption: { decrypted: true },
  });
  await f.feed({});
  assert.deepEqual(ran, ["deploy"]);
  await bot.stop();
});
