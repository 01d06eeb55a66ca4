// Moving an appservice bot, spawned: the first `bot run` of a `bot init --appservice` directory
// creates the device, sets up cross-signing, key backup and secret storage, and prints the
// recovery key once. The bot answers in an encrypted room and keeps state in account data (global
// and per room). Its data directory is deleted: `bot run` refuses, saying how to recover;
// `bot recover` with the key (no password: the appservice acts for the user) makes a new device
// that gets the identity back (cross-signed), restores the room keys from the backup and deletes
// the old device; the next `bot run` decrypts the history sent before the move, finds its state,
// and answers. `bot reset` then starts over with a new identity and recovery key.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { MatrixClient } from "../../src/index.ts";
import { scaledMs } from "../support/budget.ts";
import { finished, initAppserviceBot, lineMatching, spawnKeyroom, startKeyroom } from "../support/cli.ts";

import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

/** State in account data (per room and global), and a command that reads an old event. */
const MOVER_SKILL = `export default {
  name: "mover",
  setup(api) {
    const count = api.bot.state.define("count", { version: 1, initial: () => 0 });
    const total = api.bot.state.define("total", { version: 1, initial: () => 0 });
    api.command("count", {}, async (ctx) => {
      const n = await ctx.roomState(count).update((v) => v + 1);
      const t = await total.global().update((v) => v + 1);
      await ctx.reply("count " + n + " total " + t);
    });
    api.command("show", { args: { id: api.arg.string() } }, async (ctx, { id }) => {
      const ev = await api.bot.client.fetchEvent(ctx.roomId, id);
      await ctx.reply("shown: " + (typeof ev.content.body === "string" ? ev.content.body : "undecryptable"));
    });
  },
};
`;

/** Polls `probe` until it gives a value (the owner's sync brings the changes). */
async function eventually<T>(probe: () => Promise<T | undefined>, ms = scaledMs(20_000)): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting for the owner's view");
    await new Promise((r) => setTimeout(r, 100));
  }
}

let dir: string;
let hs: TestDevServer | undefined;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-bot-as-move-"));
});
after(async () => {
  await hs?.close();
  await rm(dir, { recursive: true, force: true });
});

test("an appservice bot moved with its recovery key: identity, history and account-data state come back", {
  timeout: scaledMs(240_000),
}, async () => {
  const botId = "@mover:localhost";
  const botDir = join(dir, "mover-as");
  const init = await initAppserviceBot(botDir, botId);
  const { hsPort, homeserver, ownerId } = init;
  assert.equal(init.code, 0, init.stderr);
  const made = JSON.parse(init.stdout.trim()) as { recovery_key: unknown; registration: string };
  assert.equal(
    made.recovery_key,
    null,
    "bot init --appservice touches no account: the first run sets recovery up",
  );
  assert.match(await readFile(made.registration, "utf8"), /io\.element\.msc4190: true/);
  await writeFile(join(botDir, "skills", "mover.mjs"), MOVER_SKILL);
  const yamlPath = join(botDir, "bot.yaml");
  const yaml = await readFile(yamlPath, "utf8");
  await writeFile(yamlPath, yaml.replace(/^skills:\n/m, "skills:\n  - ./skills/mover.mjs\n"));
  assert.match(await readFile(yamlPath, "utf8"), /mover\.mjs/);

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
  const waiting = new Map<string, () => void>();
  const onReply = (body: string) => {
    replies.push(body);
    waiting.get(body)?.();
  };
  owner.on("room.event", (_room, ev) => {
    if (ev.sender !== botId || ev.type !== "m.room.message") return;
    if (ev.encryption?.decrypted === true) onReply(String(ev.content.body));
  });
  owner.on("room.decrypted", (_room, ev) => {
    if (ev.sender === botId && ev.type === "m.room.message") onReply(String(ev.content.body));
  });
  const reply = (body: string) => new Promise<void>((done) => waiting.set(body, done));
  const ask = async (text: string, expected: string) => {
    const answered = reply(expected);
    await owner.sendText(roomId, text);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no "${expected}" after ${text}; got ${replies.join(" | ")}`)),
        scaledMs(30_000),
      );
    });
    try {
      await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  await owner.startSync();

  // 1. The first run: device, cross-signing, backup, secret storage; the key printed once.
  let roomId = "";
  let recoveryKey = "";
  let oldDevice = "";
  let secretId = "";
  {
    const run = startKeyroom(["bot", "run", botDir]);
    const done = finished(run);
    try {
      const recoveryLine = lineMatching(run, (r) => r.event === "recovery");
      const started = await lineMatching(run, (r) => r.msg === "bot started");
      const line = await recoveryLine;
      assert.equal(line.user_id, botId);
      assert.equal(line.device_id, started.deviceId);
      assert.equal(typeof line.recovery_key, "string");
      recoveryKey = String(line.recovery_key);
      oldDevice = String(started.deviceId);
      const joined = lineMatching(run, (r) => r.msg === "joined on invitation");
      roomId = await owner.createRoom({ name: "move", invite: [botId], encrypted: true });
      await joined;
      while (owner.getRoom(roomId)?.getMember(botId)?.membership !== "join") {
        await new Promise((r) => setTimeout(r, 50));
      }
      secretId = await owner.sendText(roomId, "history the new machine must read");
      await ask("!count", "count 1 total 1");
      await ask("!echo hi", "hi");
    } finally {
      run.kill("SIGTERM"); // the bot uploads the room keys not yet in the backup as it stops
      const end = await done;
      assert.equal(end.code, 0, end.stderr);
      const printed = (end.stdout + end.stderr).split(recoveryKey).length - 1;
      assert.equal(printed, 1, "the recovery key is printed once and never logged");
    }
  }
  const firstIdentity = await owner.getUserIdentity(botId);
  assert.ok(firstIdentity !== undefined, "the bot's user has a cross-signing identity");

  // 2. A new machine: the data directory is gone. A start refuses, naming the way out.
  await rm(join(botDir, ".keyroom"), { recursive: true, force: true });
  const refused = await spawnKeyroom(["bot", "run", botDir]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /has a cross-signing identity, but .* has no device of it/);
  assert.match(refused.stderr, /keyroom bot recover/);
  assert.match(refused.stderr, /keyroom bot reset/);

  // A mistyped key fails and leaves nothing behind (the device it made is deleted again).
  const typo = recoveryKey.startsWith("A") ? `B${recoveryKey.slice(1)}` : `A${recoveryKey.slice(1)}`;
  const mistyped = await spawnKeyroom(["bot", "recover", botDir], { KEYROOM_RECOVERY_KEY: typo });
  assert.equal(mistyped.code, 1, mistyped.stderr);
  assert.ok(!(mistyped.stdout + mistyped.stderr).includes(typo), "the key is not echoed");

  // 3. bot recover with the key only (no password): a new device with the identity and the keys.
  const recovered = await spawnKeyroom(["bot", "recover", botDir], { KEYROOM_RECOVERY_KEY: recoveryKey });
  assert.equal(recovered.code, 0, recovered.stderr);
  assert.ok(!(recovered.stdout + recovered.stderr).includes(recoveryKey), "the key is not echoed");
  const result = JSON.parse(recovered.stdout.trim()) as {
    event: string;
    user_id: string;
    device_id: string;
    cross_signed: boolean;
    restored_keys: number;
    deleted_devices: string[];
  };
  assert.equal(result.event, "recovered");
  assert.equal(result.user_id, botId);
  assert.notEqual(result.device_id, oldDevice, "a new device");
  assert.equal(result.cross_signed, true, "signed by the bot's own identity");
  assert.ok(result.restored_keys >= 1, "room keys restored from the backup");
  assert.deepEqual(result.deleted_devices, [oldDevice], "the device left behind is deleted");
  const again = await spawnKeyroom(["bot", "recover", botDir], { KEYROOM_RECOVERY_KEY: recoveryKey });
  assert.equal(again.code, 2, "nothing to recover: a usage error");
  assert.match(again.stderr, /still has the bot's device and stores: run it/);

  // 4. The recovered bot runs on its new device: old history, state and commands.
  {
    const run = startKeyroom(["bot", "run", botDir]);
    const done = finished(run);
    try {
      const started = await lineMatching(run, (r) => r.msg === "bot started");
      assert.equal(started.deviceId, result.device_id, "the recovered device");
      // The owner's view of the bot's devices follows the device-list changes it syncs.
      const onlyNew = await eventually(async () => {
        const devices = (await owner.getUserDevices(botId)).filter((d) => !d.deleted);
        return devices.length === 1 && devices[0]?.deviceId === result.device_id ? devices[0] : undefined;
      });
      assert.equal(onlyNew.crossSigned, true, "the owner sees the new device cross-signed");
      assert.equal(
        (await owner.getUserIdentity(botId))?.masterKey,
        firstIdentity.masterKey,
        "the same identity",
      );
      await ask(`!show ${secretId}`, "shown: history the new machine must read");
      await ask("!count", "count 2 total 2");
      await ask("!echo again", "again");
    } finally {
      run.kill("SIGTERM");
      const end = await done;
      assert.equal(end.code, 0, end.stderr);
      assert.ok(!end.stdout.includes('"event":"recovery"'), "no new recovery key");
    }
  }

  // A device whose encryption store is gone: refused too, naming the ways out.
  const userDir = join(botDir, ".keyroom", "appservice", "_mover_localhost");
  await rm(join(userDir, "keyroom-crypto.sqlite3"), { force: true });
  const noStore = await spawnKeyroom(["bot", "run", botDir]);
  assert.equal(noStore.code, 1, noStore.stderr);
  assert.match(noStore.stderr, /its encryption store .* is missing/);
  assert.match(noStore.stderr, /keyroom bot recover/);

  // 5. bot reset: the devices go, and the next start makes a new identity and recovery key.
  const reset = await spawnKeyroom(["bot", "reset", botDir]);
  assert.equal(reset.code, 0, reset.stderr);
  const resetLine = JSON.parse(reset.stdout.trim()) as { event: string; deleted_devices: string[] };
  assert.equal(resetLine.event, "reset");
  assert.deepEqual(resetLine.deleted_devices, [result.device_id]);
  {
    const run = startKeyroom(["bot", "run", botDir]);
    const done = finished(run);
    try {
      const line = await lineMatching(run, (r) => r.event === "recovery");
      assert.equal(typeof line.recovery_key, "string");
      assert.notEqual(line.recovery_key, recoveryKey, "a new recovery key");
    } finally {
      // While it is still starting (the key is printed before the bot starts): a clean stop once
      // started, not the CLI's 'interrupted' (status 130) for a command that does not watch signals.
      run.kill("SIGTERM");
      const end = await done;
      assert.equal(end.code, 0, end.stderr);
      assert.ok(/"bot started"[\s\S]*"bot stopped"/.test(end.stdout), end.stdout);
    }
  }
  await eventually(async () => {
    const now = await owner.getUserIdentity(botId);
    return now !== undefined && now.masterKey !== firstIdentity.masterKey ? now : undefined;
  });
  await owner.close();
});
