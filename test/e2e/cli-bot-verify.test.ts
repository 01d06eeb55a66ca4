// `keyroom bot verify USER` against a running `keyroom bot run` (through its control socket): the
// bot starts SAS in a DM with its owner, the operator's terminal gets the emoji as a JSON line and
// confirms with `y`, the owner (a Keyroom client) confirms too. Afterwards the owner sees the bot
// verified, and an owner-only command that requires verified owners, refused before, now runs.
import assert from "node:assert/strict";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { initBotDir } from "../../src/bot/index.ts";
import { MatrixClient, type VerificationRequest } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import { botVerifyInProcess, startKeyroom } from "../support/cli.ts";
import { startTestDevServer } from "../support/devserver.ts";

/** Stdout JSON lines of `child` as they come. */
function lines(child: ChildProcessWithoutNullStreams): {
  next(match: (r: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
} {
  const seen: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let buffer = "";
  child.stdout.on("data", (d: Buffer) => {
    buffer += d.toString("utf8");
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    for (const p of parts) if (p.trim() !== "") seen.push(JSON.parse(p) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  let closed = false;
  child.once("close", () => {
    closed = true;
    for (const w of waiters.splice(0)) w();
  });
  return {
    async next(match) {
      for (;;) {
        const found = seen.find(match);
        if (found !== undefined) return found;
        if (closed) throw new Error("the process ended before the line came");
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}

test("keyroom bot verify USER: SAS from the running bot, emoji on the operator's terminal", {
  timeout: scaledMs(180_000),
}, async () => {
  const hs = await startTestDevServer();
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bot-verify-"));
  const owner = new MatrixClient({
    homeserverUrl: hs.baseUrl,
    encryption: { store: { directory: join(dir, "owner") } },
  });
  let run: ChildProcessWithoutNullStreams | undefined;
  try {
    await owner.register({ username: "owner", password: "pw" });
    await owner.bootstrapCrossSigning({ auth: { password: "pw" } });
    const botDir = join(dir, "bot");
    const made = await initBotDir({
      dir: botDir,
      homeserverUrl: hs.baseUrl,
      user: "verifybot",
      password: "pw",
      owners: [owner.userId],
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    await writeFile(
      join(botDir, "skills", "admin.mjs"),
      `export default { name: "admin", setup(bot) { bot.command("secret", { ownerOnly: true }, (ctx) => ctx.reply("the secret")); } };\n`,
    );
    await writeFile(
      join(botDir, "bot.yaml"),
      [
        `homeserver: ${hs.baseUrl}`,
        `user: "${made.userId}"`,
        `owners: ["${owner.userId}"]`,
        "skills: [./skills/echo.mjs, ./skills/admin.mjs]",
        "encryption: { requireVerifiedOwners: true }",
        "",
      ].join("\n"),
    );
    run = startKeyroom(["bot", "run", botDir]);
    const log = lines(run);
    await log.next((r) => r.msg === "bot started");

    const answers: string[] = [];
    const waiters: (() => void)[] = [];
    owner.on("room.event", (_room, ev) => {
      if (
        ev.sender === made.userId &&
        ev.type === "m.room.message" &&
        ev.content.msgtype !== "m.key.verification.request"
      ) {
        answers.push(String(ev.content.body));
        for (const w of waiters.splice(0)) w();
      }
    });
    const answered = async (n: number) => {
      while (answers.length < n) await new Promise<void>((r) => waiters.push(r));
    };
    const incoming = new Promise<VerificationRequest>((resolve) => {
      owner.on("verification.request", (r) => resolve(r));
    });
    await owner.startSync();
    const roomId = await owner.createDirectRoom(made.userId, { encrypted: true });
    while (owner.getRoom(roomId)?.getMember(made.userId)?.membership !== "join") {
      await new Promise((r) => setTimeout(r, 50));
    }
    await owner.sendText(roomId, "!secret");
    await answered(1);
    assert.match(answers[0] ?? "", /needs a verified owner/);

    const verify = startKeyroom(["bot", "verify", owner.userId, "--dir", botDir]);
    const out = lines(verify);
    const request = await incoming;
    assert.equal(request.roomId, roomId, "the bot asks in the DM");
    await request.accept();
    const sas = await out.next((r) => r.event === "sas");
    const ours = await request.waitFor((s) => s.sas?.emoji !== undefined);
    assert.deepEqual(
      (sas.emoji as { name: string }[]).map((e) => e.name),
      ours.sas?.emoji?.map((e) => e.description),
      "the operator sees the emoji the owner sees",
    );
    verify.stdin.write("y\n");
    await request.confirm();
    const done = await out.next((r) => r.event === "done");
    assert.equal(done.user_id, owner.userId);
    assert.equal((await request.finished()).phase, "done");
    const exit = await new Promise<number | null>((r) => verify.once("close", r));
    assert.equal(exit, 0);
    assert.equal(
      (await owner.getUserIdentity(made.userId))?.verified,
      true,
      "the owner sees the bot verified",
    );

    await owner.sendText(roomId, "!secret");
    await answered(2);
    assert.equal(answers[1], "the secret", "a verified owner is obeyed");

    // With the bot stopped, `bot verify` opens the bot's device itself (here in-process).
    const stopped = new Promise((r) => run?.once("close", r));
    run.kill("SIGTERM");
    await stopped;
    const offline = botVerifyInProcess(owner, botDir);
    const second = await offline.request;
    // A command sent meanwhile is for the bot: the verification's device does not take it.
    await owner.sendText(roomId, "!echo sent while the bot was stopped");
    await second.accept();
    await second.waitFor((st) => st.sas?.emoji !== undefined);
    await offline.shown;
    await second.confirm();
    assert.equal(await offline.exit, 0, offline.printed.join(""));
    assert.ok(offline.printed.some((l) => l.includes('"event":"done"')));
    // Started again, the bot answers it.
    run = startKeyroom(["bot", "run", botDir]);
    await answered(3);
    assert.equal(answers[2], "sent while the bot was stopped");
  } finally {
    run?.kill("SIGTERM");
    await owner.close().catch(() => undefined);
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
});
