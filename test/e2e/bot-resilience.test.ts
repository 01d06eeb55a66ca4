// The bot survives its homeserver and its own death:
// - a 429 storm (the devserver rate-limits every token) and a homeserver restart in the middle
//   of a conversation: every command answered, once, in order;
// - SIGKILL of a `keyroom bot run` process in the middle of a burst of commands, then a restart:
//   the same device, no command lost, none answered twice.
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { arg, initBotDir } from "../../src/bot/index.ts";
import { DEFAULT_WAIT_MS, startBotTest } from "../../src/bot/testing/index.ts";
import { type DevServer, startDevServer } from "../../src/devserver/index.ts";
import { MatrixClient } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");

test("a homeserver restart, then a 429 storm: every command answered once, in order", {
  timeout: scaledMs(180_000),
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bot-storm-"));
  const dbPath = join(dir, "devserver.sqlite");
  let server: DevServer = await startDevServer({ dbPath, port: 0 });
  const t = await startBotTest({
    waitMs: scaledMs(DEFAULT_WAIT_MS), // set-up steps and nextMessage: a busy machine is not a failure
    homeserverUrl: server.baseUrl,
    setup: (bot) => bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text)),
  });
  try {
    const alice = await t.user("alice");
    await alice.send("!echo before");
    assert.equal((await alice.nextMessage()).body, "before");

    // The homeserver goes away and comes back, rate-limiting every token hard from now on.
    const { baseUrl } = server;
    await server.close();
    server = await startDevServer({
      dbPath,
      port: Number(new URL(baseUrl).port),
      rateLimit: { perSecond: 3, burst: 1 },
    });
    const sent = Array.from({ length: 10 }, (_, i) => `storm ${i}`);
    for (const text of sent) await alice.send(`!echo ${text}`);
    const got: string[] = [];
    for (let i = 0; i < sent.length; i++)
      got.push((await alice.nextMessage({ timeoutMs: scaledMs(90_000) })).body);
    assert.deepEqual(got, sent, "all answered, in order, through the restart and the 429s");
    assert.equal(t.bot.isRunning, true);
    assert.equal(alice.received.length, sent.length + 1, "nothing answered twice");
  } finally {
    await t.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

function runBot(botDir: string): { child: ChildProcessWithoutNullStreams; started: Promise<string> } {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", MAIN, "bot", "run", botDir],
    {
      cwd: ROOT,
    },
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  const started = new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString("utf8");
      for (const line of buffer.split("\n").slice(0, -1)) {
        const record = JSON.parse(line) as { msg?: string; deviceId?: string };
        if (record.msg === "bot started") resolve(record.deviceId ?? "");
      }
      buffer = buffer.slice(buffer.lastIndexOf("\n") + 1);
    });
    child.once("close", (code) => reject(new Error(`bot run exited ${code} before starting: ${stderr}`)));
  });
  started.catch(() => undefined);
  return { child, started };
}

test("SIGKILL in the middle of a conversation: same device, nothing lost, nothing answered twice", {
  timeout: scaledMs(240_000),
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bot-kill-"));
  const server = await startDevServer({ dbPath: join(dir, "devserver.sqlite"), port: 0 });
  const alice = new MatrixClient({
    homeserverUrl: server.baseUrl,
    encryption: { store: { directory: join(dir, "alice") } },
  });
  let bot: ChildProcessWithoutNullStreams | undefined;
  try {
    await alice.register({ username: "alice", password: "pw" });
    const botDir = join(dir, "bot");
    const made = await initBotDir({
      dir: botDir,
      homeserverUrl: server.baseUrl,
      user: "killme",
      password: "pw",
      owners: [alice.userId],
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const first = runBot(botDir);
    bot = first.child;
    assert.equal(await first.started, made.deviceId);

    const answers: string[] = [];
    const waiters: (() => void)[] = [];
    const onEvent = (ev: {
      sender: string;
      type: string;
      content: Record<string, unknown>;
      encryption?: { decrypted: boolean };
    }) => {
      if (ev.sender !== made.userId || ev.type !== "m.room.message") return;
      answers.push(String(ev.content.body));
      for (const w of waiters.splice(0)) w();
    };
    alice.on("room.event", (_room, ev) => onEvent(ev));
    alice.on("room.decrypted", (_room, ev) => onEvent(ev));
    const until = async (check: () => boolean) => {
      while (!check()) await new Promise<void>((r) => waiters.push(r));
    };
    await alice.startSync();
    const roomId = await alice.createRoom({ name: "kill", invite: [made.userId], encrypted: true });
    while (alice.getRoom(roomId)?.getMember(made.userId)?.membership !== "join") {
      await new Promise((r) => setTimeout(r, 50));
    }

    const texts = Array.from({ length: 15 }, (_, i) => `message ${i}`);
    const sending = (async () => {
      for (const text of texts) await alice.sendText(roomId, `!echo ${text}`);
    })();
    await until(() => answers.length >= 1);
    bot.kill("SIGKILL");
    await new Promise((r) => bot?.once("close", r));
    await sending;

    const second = runBot(botDir);
    bot = second.child;
    assert.equal(await second.started, made.deviceId, "the restart resumes the same device");
    await alice.sendText(roomId, "!echo end");
    await until(() => answers.includes("end"));
    assert.deepEqual(answers, [...texts, "end"], "each answered once, in order");
  } finally {
    bot?.kill("SIGKILL");
    await alice.close().catch(() => undefined);
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
