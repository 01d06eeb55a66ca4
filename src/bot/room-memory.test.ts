// What the bot keeps in memory per room (state slots and written values, rooms it joined on
// invitation, live rooms, arrival times of unreadable events) goes when it leaves the room, is
// kicked or banned, or the client forgets the room; the room's state in account data is the
// user's and stays. Fed through a client without a homeserver (`testing/fake-client.ts`, `fakeBotClient` of `keyroom/bot/testing`).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JsonObject } from "../index.ts";
import { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

const ALICE = "@alice:fake.example";
const MOD = "@mod:fake.example";

async function noteBot() {
  const f = await fakeBotClient();
  const bot = new Bot({ client: f.client, invites: "anyone" });
  const notes = bot.state.define<string[]>("notes", { version: 1, initial: () => [] });
  bot.command("note", { args: { text: arg.rest() } }, async (ctx, { text }) => {
    await notes.room(ctx.roomId).update((all) => [...all, text]);
  });
  await bot.start();
  await f.feed({});
  return { f, bot, notes };
}

let n = 0;
const unreadable = (sender: string): JsonObject => ({
  type: "m.room.encrypted",
  event_id: `$unreadable${++n}`,
  sender,
  origin_server_ts: 1_700_000_000_000,
  content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AAAA", session_id: "s", sender_key: "k" },
});

/** The bot is invited to `roomId`, joins, gets a note to keep and an unreadable message. */
async function useRoom(f: Awaited<ReturnType<typeof fakeBotClient>>, roomId: string): Promise<void> {
  await f.feedInvite(roomId, ALICE);
  await f.feedTimeline(roomId, [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage(ALICE, "!note remember me"),
    unreadable(ALICE),
  ]);
}

const leaveBy = (roomId: string, how: "leave" | "kick" | "ban"): JsonObject => ({
  rooms: {
    leave: {
      [roomId]: {
        timeline: {
          events: [
            how === "leave"
              ? fakeMember(FAKE_BOT_USER, "leave")
              : fakeMember(FAKE_BOT_USER, how === "kick" ? "leave" : "ban", MOD),
          ],
        },
      },
    },
  },
});

test("rooms joined and left (left, kicked, banned) leave nothing behind in the bot's memory", async () => {
  const { f, bot, notes } = await noteBot();
  const before = bot.roomMemory();
  const rooms = Array.from({ length: 9 }, (_, i) => `!r${i}:fake.example`);
  for (const roomId of rooms) await useRoom(f, roomId);
  const during = bot.roomMemory();
  assert.equal(during.state, 2 * rooms.length, "a slot and a written value per room");
  assert.equal(during.late, rooms.length);
  assert.equal(during.liveRooms, rooms.length);
  const hows = ["leave", "kick", "ban"] as const;
  for (const [i, roomId] of rooms.entries()) await f.feed(leaveBy(roomId, hows[i % 3] as "leave"));
  assert.deepEqual(bot.roomMemory(), before);
  // Only memory went: nothing was written to (or removed from) the rooms' account data.
  const accountWrites = f.sent.filter((s) => s.type.startsWith("dev.keyroom.bot.state"));
  assert.deepEqual(accountWrites, []);
  // A slot made again reads what the room's account data holds (here: nothing synced back).
  assert.deepEqual(notes.room(rooms[0] as string).get(), []);
  await bot.stop();
});

test("a room the client forgets leaves nothing behind either", async () => {
  const { f, bot, notes } = await noteBot();
  const roomId = "!forgotten:fake.example";
  await useRoom(f, roomId);
  await f.feed(leaveBy(roomId, "leave"));
  const before = bot.roomMemory();
  // A job writes state for the room after the bot left it: kept until the client forgets the room.
  await notes.room(roomId).set(["late write"]);
  assert.equal(bot.roomMemory().state, (before.state ?? 0) + 2);
  await f.client.forgetRoom(roomId);
  assert.deepEqual(bot.roomMemory(), before);
  await bot.stop();
});

test("a room the bot is still in keeps its entries when another room is left", async () => {
  const { f, bot } = await noteBot();
  await useRoom(f, "!stay:fake.example");
  await useRoom(f, "!go:fake.example");
  await f.feed(leaveBy("!go:fake.example", "kick"));
  const { liveRooms, late, state } = bot.roomMemory();
  assert.deepEqual({ liveRooms, late, state }, { liveRooms: 1, late: 1, state: 2 });
  await bot.stop();
});
