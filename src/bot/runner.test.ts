// `runBotDir` with `watch`: a changed skill file is reloaded into the running bot (same client,
// same device); a broken edit is refused and the previous version keeps answering.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { startDevServer } from "../devserver/index.ts";
import { MatrixClient, type RoomEvent } from "../index.ts";
import { initBotDir } from "./init.ts";
import { createBotLogger } from "./logger.ts";
import { runBotDir } from "./runner.ts";

test("bot run --watch reloads a changed skill without restarting the client", async () => {
  const server = await startDevServer({ port: 0, memory: true });
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bot-watch-"));
  const alice = new MatrixClient({
    homeserverUrl: server.baseUrl,
    encryption: { store: { directory: join(dir, "alice") } },
  });
  const logs: string[] = [];
  const logger = createBotLogger({ format: "json", write: (l) => void logs.push(l) });
  const running = await (async () => {
    const made = await initBotDir({
      dir: join(dir, "bot"),
      homeserverUrl: server.baseUrl,
      user: "watcher",
      password: "pw",
      owners: [],
      logger,
    });
    return { made, bot: await runBotDir(join(dir, "bot"), { logger, watch: true }) };
  })();
  try {
    const { made, bot } = running;
    const answers: string[] = [];
    const waiters: (() => void)[] = [];
    alice.on("room.event", (_r, ev: RoomEvent) => {
      if (ev.sender === made.userId && ev.type === "m.room.message") {
        answers.push(String(ev.content.body));
        for (const w of waiters.splice(0)) w();
      }
    });
    const next = async () => {
      const n = answers.length;
      while (answers.length === n) await new Promise<void>((r) => waiters.push(r));
      return answers[n];
    };
    await alice.register({ username: "alice", password: "pw" });
    await alice.startSync();
    const roomId = await alice.createRoom({ invite: [made.userId], encrypted: true });
    while (alice.getRoom(roomId)?.getMember(made.userId)?.membership !== "join")
      await new Promise((r) => setTimeout(r, 25));
    await alice.sendText(roomId, "!echo one");
    assert.equal(await next(), "one");

    const reloaded = () =>
      new Promise<void>((resolve) => {
        const count = logs.filter((l) => l.includes("skill reload")).length;
        const timer = setInterval(() => {
          if (logs.filter((l) => l.includes("skill reload")).length > count) {
            clearInterval(timer);
            resolve();
          }
        }, 20);
      });
    const skill = join(dir, "bot", "skills", "echo.mjs");
    let done = reloaded();
    await writeFile(
      skill,
      `export default { name: "echo", setup(bot) { bot.command("echo", { args: { text: bot.arg.rest() } }, (ctx, { text }) => ctx.reply(text.toUpperCase())); } };\n`,
    );
    await done;
    await alice.sendText(roomId, "!echo two");
    assert.equal(await next(), "TWO", "the new version answers");
    done = reloaded();
    await writeFile(skill, "export default { this is not JavaScript\n");
    await done;
    assert.ok(logs.some((l) => l.includes("skill reload failed")));
    await alice.sendText(roomId, "!echo three");
    assert.equal(await next(), "THREE", "the previous version stays");
    assert.equal(bot.bot.client.deviceId, made.deviceId);
  } finally {
    await running.bot.stop();
    await alice.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
