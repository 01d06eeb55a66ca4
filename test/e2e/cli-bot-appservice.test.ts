// `keyroom bot` in appservice mode, spawned: `bot init --appservice URL` writes the config and a
// registration file, the devserver loads that file at start, `bot run` serves the transactions
// endpoint and runs the bot as the appservice's user, and a user in an encrypted room sends
// `!echo hi` and reads `hi` (E2EE through MSC2409 / MSC3202). A restart resumes the same device and
// answers what was sent while the bot was stopped; `bot verify` with the bot stopped verifies it
// with SAS and leaves the commands sent meanwhile to the bot.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { MatrixClient } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import {
  botVerifyInProcess,
  finished,
  initAppserviceBot,
  lineMatching,
  startKeyroom,
} from "../support/cli.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

let dir: string;
let hs: TestDevServer | undefined;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-bot-as-"));
});
after(async () => {
  await hs?.close();
  await rm(dir, { recursive: true, force: true });
});

test("bot init --appservice + bot run: the bot answers !echo hi in an encrypted room as the appservice's user", {
  timeout: scaledMs(180_000),
}, async () => {
  const botId = "@echo:localhost";
  const botDir = join(dir, "echo-as");
  const init = await initAppserviceBot(botDir, botId);
  const { hsPort, homeserver, ownerId } = init;
  assert.equal(init.code, 0, init.stderr);
  const made = JSON.parse(init.stdout.trim()) as { event: string; user_id: string; registration: string };
  assert.equal(made.event, "initialized");
  assert.equal(made.user_id, botId);
  assert.equal((await stat(made.registration)).mode & 0o777, 0o600, "the registration holds tokens");
  assert.match(
    await readFile(join(botDir, "bot.yaml"), "utf8"),
    /appservice:\n {2}registration: \.\/registration\.yaml/,
  );
  assert.match(await readFile(join(botDir, ".gitignore"), "utf8"), /^\/registration\.yaml$/m);

  // The homeserver loads the registration file at start, as Synapse's app_service_config_files.
  hs = await startTestDevServer({
    port: hsPort,
    appservices: [made.registration],
    appserviceRetry: { baseMs: 20, maxMs: 200 },
  });
  const [localpart] = ownerId.slice(1).split(":") as [string];
  const owner = new MatrixClient({
    homeserverUrl: homeserver,
    encryption: { store: { directory: join(dir, "owner") } },
  });
  await owner.register({ username: localpart, password: "pw" });
  const replies: string[] = [];
  /** Answers that came in the clear (checked below: the emitter catches what a listener throws). */
  const clear: string[] = [];
  const waiting = new Map<string, () => void>();
  owner.on("room.event", (_room, ev) => {
    if (ev.sender !== botId || ev.type !== "m.room.message") return;
    if (ev.content.msgtype === "m.key.verification.request") return;
    const body = String(ev.content.body);
    if (ev.encryption?.decrypted !== true) clear.push(body);
    replies.push(body);
    waiting.get(body)?.();
  });
  const reply = (body: string) => new Promise<void>((done) => waiting.set(body, done));
  await owner.startSync();

  let deviceId: unknown;
  let roomId = "";
  let dmId = "";
  let whileDown: Promise<void> | undefined;
  for (const [round, text] of [
    [1, "hi"],
    [2, "again"],
  ] as const) {
    if (round === 2) {
      // Sent while the bot is stopped: the homeserver keeps retrying the transaction, and the
      // restarted bot must not take it before its handlers are ready.
      whileDown = reply("while down");
      await owner.sendText(roomId, "!echo while down");
    }
    const run = startKeyroom(["bot", "run", botDir]);
    const done = finished(run);
    try {
      const recovery = round === 1 ? lineMatching(run, (r) => r.event === "recovery") : undefined;
      const started = await lineMatching(run, (r) => r.msg === "bot started");
      assert.equal(started.userId, botId);
      if (round === 1) {
        deviceId = started.deviceId;
        // The first start set recovery up and printed the key once.
        assert.equal(typeof (await recovery)?.recovery_key, "string");
        // Listened for before the invitation: the bot may join before createRoom returns.
        const joined = lineMatching(run, (r) => r.msg === "joined on invitation");
        roomId = await owner.createRoom({ name: "echo", invite: [botId], encrypted: true });
        await joined;
        // The bot's join must be in the owner's view, so the room key goes to its device too.
        while (owner.getRoom(roomId)?.getMember(botId)?.membership !== "join") {
          await new Promise((r) => setTimeout(r, 50));
        }
        // A DM too, where `bot verify` below asks.
        dmId = await owner.createDirectRoom(botId, { encrypted: true });
        while (owner.getRoom(dmId)?.getMember(botId)?.membership !== "join") {
          await new Promise((r) => setTimeout(r, 50));
        }
      } else {
        assert.equal(started.deviceId, deviceId, "a restart resumes the appservice user's device");
        await whileDown;
      }
      const answered = reply(text);
      await owner.sendText(roomId, `!echo ${text}`);
      await answered;
    } finally {
      run.kill("SIGTERM");
      const end = await done;
      assert.equal(end.code, 0, end.stderr);
      assert.ok(end.stdout.includes('"bot stopped"'), end.stdout);
      if (round === 2) assert.ok(!end.stdout.includes('"event":"recovery"'), "a restart makes no new key");
    }
  }
  assert.deepEqual(replies, ["hi", "while down", "again"]);
  const status = await owner.getUserIdentity(botId);
  assert.ok(status !== undefined, "the bot's user has a cross-signing identity");

  // `bot verify` with the bot stopped (here in-process): it serves the appservice endpoint in hold
  // mode; a command sent meanwhile is answered by the bot's next start.
  await owner.bootstrapCrossSigning({ auth: { password: "pw" } });
  const offline = botVerifyInProcess(owner, botDir);
  const request = await offline.request;
  assert.equal(request.roomId, dmId, "the bot asks in the DM");
  const held = reply("held for the bot");
  await owner.sendText(roomId, "!echo held for the bot");
  await request.accept();
  await request.waitFor((st) => st.sas?.emoji !== undefined);
  await offline.shown;
  await request.confirm();
  assert.equal(await offline.exit, 0, offline.printed.join(""));
  assert.equal((await request.finished()).phase, "done");
  assert.ok(!replies.includes("held for the bot"), "nothing answers while the bot is stopped");
  const restarted = startKeyroom(["bot", "run", botDir]);
  const restartedDone = finished(restarted);
  try {
    await held;
  } finally {
    restarted.kill("SIGTERM");
    assert.equal((await restartedDone).code, 0);
  }
  assert.deepEqual(replies, ["hi", "while down", "again", "held for the bot"], "answered once");
  assert.equal((await owner.getUserIdentity(botId))?.verified, true, "the owner sees the bot verified");
  await owner.close();
  assert.deepEqual(clear, [], "every answer is encrypted");
  // Recovery, reset and the move to a new machine: cli-bot-appservice-recovery.test.ts.
});
