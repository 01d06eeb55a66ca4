// What the bot keeps in memory per room (state slots and written values, rooms it joined on
// invitation, live rooms, arrival times of unreadable events) goes when it leaves the room, is
// kicked or banned, or the client forgets the room; the room's state in account data is the
// user's and stays. Fed through a client without a homeserver (`testing/fake-client.ts`, `fakeBotClient` of `keyroom/bot/testing`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { type JsonObject, MatrixClient, MemoryClientStore } from "../index.ts";
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

/**
 * The bot is invited to `roomId`, joins, gets a note to keep, an unreadable message, a reaction
 * (remembered for `onReactionRemoved`) and a redaction of an event it never saw (remembered too).
 */
async function useRoom(f: Awaited<ReturnType<typeof fakeBotClient>>, roomId: string): Promise<void> {
  await f.feedInvite(roomId, ALICE);
  const note = fakeMessage(ALICE, "!note remember me");
  await f.feedTimeline(roomId, [
    fakeMember(FAKE_BOT_USER, "join"),
    note,
    unreadable(ALICE),
    {
      type: "m.reaction",
      event_id: `$reaction${++n}`,
      sender: ALICE,
      origin_server_ts: 1_700_000_000_000,
      content: { "m.relates_to": { rel_type: "m.annotation", event_id: note.event_id, key: "👍" } },
    },
    {
      type: "m.room.redaction",
      event_id: `$redaction${++n}`,
      sender: ALICE,
      origin_server_ts: 1_700_000_000_000,
      redacts: "$never-seen",
      content: {},
    },
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
  assert.equal(during.reactions, 2 * rooms.length, "a reaction and a redaction per room");
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

test("a room left in a response handled while an earlier one's work runs keeps its memory until its own events ran", async () => {
  // The sync loop handles the next response while the previous one's work (a slow command) runs.
  // The earlier response's settle must not drop what the bot keeps for a room the later response
  // left: that room's last command, still running, would write it back, kept for ever.
  const A = "!slow:fake.example";
  const B = "!left:fake.example";
  const joined = {
    state: { events: [fakeMember(FAKE_BOT_USER, "join"), fakeMember(ALICE, "join")] },
    timeline: { events: [] },
  };
  const replies: JsonObject[] = [
    { next_batch: "s1", rooms: { join: { [A]: joined, [B]: joined } } },
    { next_batch: "s2", rooms: { join: { [A]: { timeline: { events: [fakeMessage(ALICE, "!hold")] } } } } },
    {
      next_batch: "s3",
      rooms: {
        leave: {
          [B]: {
            timeline: {
              events: [fakeMessage(ALICE, "!note kept"), fakeMember(FAKE_BOT_USER, "leave", MOD)],
            },
          },
        },
      },
    },
  ];
  let parked: () => void = () => {};
  const allHandled = new Promise<void>((r) => {
    parked = r;
  });
  const store = new MemoryClientStore();
  await store.saveSession({
    homeserverUrl: "http://hs",
    userId: FAKE_BOT_USER,
    deviceId: "D",
    accessToken: "t",
  });
  const client = new MatrixClient({
    homeserverUrl: "http://hs",
    store,
    fetch: async (input, init) => {
      if (!new URL(input).pathname.endsWith("/sync"))
        return new Response(JSON.stringify({ event_id: "$e" }), { status: 200 });
      const next = replies.shift();
      if (next !== undefined) return new Response(JSON.stringify(next), { status: 200 });
      parked();
      return new Promise((_res, rej) =>
        init.signal?.addEventListener("abort", () => rej(new Error("aborted"))),
      );
    },
  });
  await client.restore();
  const bot = new Bot({ client });
  const notes = bot.state.define<string[]>("notes", { version: 1, initial: () => [] });
  const gate = (): [Promise<void>, () => void] => {
    let open: () => void = () => {};
    return [new Promise<void>((r) => (open = r)), () => open()];
  };
  const [holdGate, releaseHold] = gate();
  const [noteGate, releaseNote] = gate();
  bot.command("hold", {}, () => holdGate);
  bot.command("note", { args: { text: arg.rest() } }, async (ctx, { text }) => {
    await noteGate;
    await notes.room(ctx.roomId).update((all) => [...all, text]);
  });
  await bot.start();
  await allHandled;
  releaseHold(); // s2's work done while B's command (s3) still runs
  await new Promise((r) => setImmediate(r));
  releaseNote();
  await bot.stop();
  assert.equal(bot.roomMemory().state, 0, "nothing kept for the room left");
});
