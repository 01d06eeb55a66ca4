// The `keyroom bot` CLI contract, spawned: `bot init` writes a runnable bot, `bot run` runs it, and
// a user in an encrypted room sends `!echo hi` and reads `hi`. Refusals (bad config key, a device
// whose store is gone) run the same command tree in-process.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "../../src/cli/program.ts";
import { MatrixClient } from "../../src/index.ts";
import { scaledMs, withinBudget } from "../support/budget.ts";
import { finished, lineMatching, spawnKeyroom, startKeyroom } from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let hs: TestDevServer;
let dir: string;
before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-bot-"));
});
after(async () => {
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

async function inProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, {
    out: (s) => {
      stdout += s;
    },
    err: (s) => {
      stderr += s;
    },
  });
  return { code, stdout, stderr };
}

test("bot init + bot run: a user sends !echo hi in an encrypted room and reads hi", {
  timeout: scaledMs(120_000),
}, async () => {
  const alice = new MatrixClient({
    homeserverUrl: hs.baseUrl,
    encryption: { store: { directory: join(dir, "alice") } },
  });
  await alice.register({ username: `alice${Date.now().toString(36)}`, password: "pw" });
  const botDir = join(dir, "echo-bot");
  // `--password` is optional (issue 15): without it and $KEYROOM_PASSWORD, one line of stdin.
  const init = await spawnKeyroom(
    ["bot", "init", botDir, "--homeserver", hs.baseUrl, "--user", "echobot", "--owner", alice.userId],
    {},
    "bot password\n",
  );
  assert.equal(init.code, 0, init.stderr);
  const made = JSON.parse(init.stdout.trim()) as {
    event: string;
    user_id: string;
    device_id: string;
    recovery_key: string;
  };
  assert.equal(made.event, "initialized");
  assert.match(made.recovery_key, /^(\w{4} ){11}\w{4}$/, "the recovery key, printed once");
  assert.match(made.user_id, /^@echobot:/);
  const yaml = await readFile(join(botDir, "bot.yaml"), "utf8");
  assert.match(yaml, new RegExp(`owners:\\n  - "?${alice.userId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  assert.match(await readFile(join(botDir, ".gitignore"), "utf8"), /\.keyroom\//);

  const run = startKeyroom(["bot", "run", botDir, "--watch"]);
  const done = finished(run);
  try {
    const started = await lineMatching(run, (r) => r.msg === "bot started");
    assert.equal(started.deviceId, made.device_id, "bot run resumes the device bot init created");
    // Listened for before the invitation: the bot may join before Alice's next step.
    const joined = lineMatching(run, (r) => r.msg === "joined on invitation");
    const roomId = await alice.createRoom({ name: "echo", invite: [made.user_id], encrypted: true });
    const replies: string[] = [];
    const waiting = new Map<string, () => void>();
    const reply = (body: string) => new Promise<void>((r) => waiting.set(body, r));
    const hi = reply("hi");
    alice.on("room.event", (_room, ev) => {
      if (ev.roomId === roomId && ev.sender === made.user_id && ev.type === "m.room.message") {
        // Marked, not asserted here: the emitter catches what a listener throws.
        const body = String(ev.content.body);
        replies.push(ev.encryption?.decrypted === true ? body : `${body} (not encrypted)`);
        waiting.get(body)?.();
      }
    });
    await alice.startSync();
    await joined;
    // The bot's join must be in Alice's view, so her room key goes to its device too.
    while (alice.getRoom(roomId)?.getMember(made.user_id)?.membership !== "join") {
      await new Promise((r) => setTimeout(r, 50));
    }
    await alice.sendText(roomId, "!echo hi");
    await hi;
    assert.deepEqual(replies, ["hi"]);

    // --watch: a changed skill is reloaded into the running bot (same client, no restart).
    const reloaded = lineMatching(run, (r) => r.msg === "skill reloaded");
    const skill = join(botDir, "skills", "echo.mjs");
    await writeFile(
      skill,
      (await readFile(skill, "utf8")).replace("ctx.notice(text)", 'ctx.notice("v2 " + text)'),
    );
    // Bounded (load-scaled): without the reload the bot answers the old way, and the test fails.
    await withinBudget(reloaded, 30_000, (ms) => new Error(`no "skill reloaded" line after ${ms} ms`));
    const again = reply("v2 again");
    await alice.sendText(roomId, "!echo again");
    await again;
    assert.deepEqual(replies, ["hi", "v2 again"]);

    // A promise a skill does not await fails: logged, and the bot goes on (it used to end the process).
    const strayReloaded = lineMatching(run, (r) => r.msg === "skill reloaded");
    const strayLogged = lineMatching(run, (r) => String(r.msg).startsWith("a promise nobody awaited failed"));
    await writeFile(
      skill,
      (await readFile(skill, "utf8")).replace(
        'ctx.notice("v2 " + text)',
        '(void Promise.reject(new Error("stray")), ctx.notice("v3 " + text))',
      ),
    );
    await withinBudget(strayReloaded, 30_000, (ms) => new Error(`no "skill reloaded" line after ${ms} ms`));
    const v3 = reply("v3 one");
    await alice.sendText(roomId, "!echo one");
    // Without the handler in bot run, the process ends here ("keyroom exited 1 before the line came").
    await withinBudget(strayLogged, 30_000, (ms) => new Error(`no stray-rejection line after ${ms} ms`));
    await v3;
    const two = reply("v3 two");
    await alice.sendText(roomId, "!echo two");
    await withinBudget(
      two,
      30_000,
      (ms) => new Error(`the bot did not answer after a stray rejection (${ms} ms)`),
    );
    assert.deepEqual(replies, ["hi", "v2 again", "v3 one", "v3 two"]);
  } finally {
    run.kill("SIGTERM");
    const end = await done;
    await alice.close();
    assert.equal(end.code, 0, end.stderr);
  }
  const lines = (await done).stdout.trim().split("\n");
  for (const line of lines) JSON.parse(line); // JSON lines when not on a terminal
  assert.ok(lines.some((l) => l.includes('"bot stopped"')));
});

test("bot run refuses a config with a bad key, naming it", async () => {
  const botDir = join(dir, "bad-config");
  await rm(botDir, { recursive: true, force: true });
  await mkdir(botDir, { recursive: true });
  await writeFile(
    join(botDir, "bot.yaml"),
    `homeserver: ${hs.baseUrl}\nuser: "@x:localhost"\nowners: ["@ok:localhost", "nobody"]\nprefx: "!"\n`,
  );
  const r = await inProcess(["bot", "run", botDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /owners\[1\]: expected a user ID/);
  assert.match(r.stderr, /prefx: unknown key/);
});

test("bot run refuses a device whose encryption store is gone, saying how to recover; bot recover, bot reset", {
  timeout: scaledMs(60_000),
}, async () => {
  const botDir = join(dir, "lost-store");
  const init = await inProcess([
    "bot",
    "init",
    botDir,
    "--homeserver",
    hs.baseUrl,
    "--user",
    `lost${Date.now().toString(36)}`,
    "--password",
    "pw",
  ]);
  assert.equal(init.code, 0, init.stderr);
  const { recovery_key: recoveryKey, device_id: oldDevice } = JSON.parse(init.stdout) as {
    recovery_key: string;
    device_id: string;
  };
  await rm(join(botDir, ".keyroom", "crypto"), { recursive: true, force: true });
  const r = await inProcess(["bot", "run", botDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /encryption store .* is missing/);
  assert.match(r.stderr, /keyroom bot recover/);
  assert.match(r.stderr, /keyroom bot reset/);

  const recovered = await inProcess([
    "bot",
    "recover",
    botDir,
    "--password",
    "pw",
    "--recovery-key",
    recoveryKey,
  ]);
  assert.equal(recovered.code, 0, recovered.stderr);
  const line = JSON.parse(recovered.stdout) as { event: string; device_id: string; cross_signed: boolean };
  assert.equal(line.event, "recovered");
  assert.equal(line.cross_signed, true);
  assert.notEqual(line.device_id, oldDevice);

  // Data of another account: refused, naming both.
  const yamlPath = join(botDir, "bot.yaml");
  const yaml = await readFile(yamlPath, "utf8");
  await writeFile(yamlPath, yaml.replace(/^user: .*$/m, 'user: "@someoneelse:localhost"'));
  const other = await inProcess(["bot", "run", botDir]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /holds the session of @lost.*, not @someoneelse:localhost/);
  await writeFile(yamlPath, yaml);

  // Reset logs the device out; the data directory is gone and the next start is a first start.
  const reset = await inProcess(["bot", "reset", botDir]);
  assert.equal(reset.code, 0, reset.stderr);
  // stdout is the one result line, as for every other bot command (log lines go to stderr).
  const resetLine = JSON.parse(reset.stdout) as { event: string; dir: string };
  assert.equal(resetLine.event, "reset");
  assert.match(reset.stderr, /logged the old device out/);
  await assert.rejects(stat(join(botDir, ".keyroom")), { code: "ENOENT" }, "the data directory is gone");
});
