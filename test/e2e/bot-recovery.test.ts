// Moving a bot to a new machine: its data directory is deleted, and a start with the recovery key
// its first start printed (and the password) logs in a new device that gets the bot's identity
// (cross-signed), its room keys (history readable, from the key backup) and its account-data
// state back, then answers where it left off.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Bot, type OpenedBotClient, openBotClient } from "../../src/bot/index.ts";
import { MatrixClient, type RoomEvent } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import { startTestDevServer } from "../support/devserver.ts";

function countingBot(opened: OpenedBotClient): Bot {
  const bot = new Bot({ client: opened.client });
  const counter = bot.state.define<number>("count", { version: 1, initial: () => 0 });
  bot.command("count", {}, async (ctx) =>
    ctx.reply(`count ${await ctx.roomState(counter).update((n) => n + 1)}`),
  );
  return bot;
}

test("a bot moved to a new machine with its recovery key: identity, history and state come back", {
  timeout: scaledMs(180_000),
}, async () => {
  const hs = await startTestDevServer();
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bot-move-"));
  const alice = new MatrixClient({
    homeserverUrl: hs.baseUrl,
    encryption: { store: { directory: join(dir, "alice") } },
  });
  const answers: string[] = [];
  let bot: Bot | undefined;
  try {
    await alice.register({ username: "alice", password: "pw" });
    const botId = "mover";
    const first = await openBotClient({
      dataDir: join(dir, "old-machine"),
      homeserverUrl: hs.baseUrl,
      userId: botId,
      password: "bot pw",
      register: true,
    });
    assert.equal(first.firstStart, true);
    assert.ok(first.recoveryKey, "the first start gives the recovery key");
    const oldDevice = first.client.deviceId;
    bot = countingBot(first);
    await bot.start();

    const waiters: (() => void)[] = [];
    const onEvent = (ev: RoomEvent) => {
      if (ev.sender !== first.client.userId || ev.type !== "m.room.message") return;
      answers.push(String(ev.content.body));
      for (const w of waiters.splice(0)) w();
    };
    alice.on("room.event", (_r, ev) => onEvent(ev));
    alice.on("room.decrypted", (_r, ev) => onEvent(ev));
    const answered = async (n: number) => {
      while (answers.length < n) await new Promise<void>((r) => waiters.push(r));
    };
    await alice.startSync();
    const roomId = await alice.createRoom({ name: "move", invite: [first.client.userId], encrypted: true });
    while (alice.getRoom(roomId)?.getMember(first.client.userId)?.membership !== "join") {
      await new Promise((r) => setTimeout(r, 50));
    }
    const secret = await alice.sendText(roomId, "history the new machine must read");
    await alice.sendText(roomId, "!count");
    await alice.sendText(roomId, "!count");
    await answered(2);
    await bot.stop(); // uploads the room keys not in the backup yet
    await first.client.close();
    await rm(join(dir, "old-machine"), { recursive: true, force: true });

    const moved = await openBotClient({
      dataDir: join(dir, "new-machine"),
      homeserverUrl: hs.baseUrl,
      userId: first.client.userId,
      password: "bot pw",
      recoveryKey: first.recoveryKey,
    });
    assert.equal(moved.firstStart, false);
    assert.notEqual(moved.client.deviceId, oldDevice, "a new device");
    assert.deepEqual(moved.recovered?.crossSigned, true, "signed by the bot's own identity");
    assert.ok((moved.recovered?.restoredKeys ?? 0) >= 1, "room keys restored from the backup");
    const { events } = await moved.client.messages(roomId, { limit: 50 });
    const old = events.find((e) => e.eventId === secret);
    assert.equal(
      old?.content.body,
      "history the new machine must read",
      "history readable on the new machine",
    );

    bot = countingBot(moved);
    await bot.start();
    await alice.sendText(roomId, "!count");
    await answered(3);
    assert.deepEqual(answers, ["count 1", "count 2", "count 3"], "the state came back from account data");
  } finally {
    await bot?.stop().catch(() => undefined);
    await bot?.client.close().catch(() => undefined);
    await alice.close().catch(() => undefined);
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
});
