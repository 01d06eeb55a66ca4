// `keyroom/bot/appservice` in code (the CLI's `bot run / recover / reset` in appservice mode are
// built on it, spawned in cli-bot-appservice*.test.ts): the first start sets recovery up and
// returns the key once, a later start keeps the device, a lost data directory is refused with
// RECOVERY_REQUIRED, a mistyped key leaves no device behind, the right key brings the identity back
// on a new device and deletes the old one, recovering a bot that is still here is refused, and a
// reset gives a new identity and key.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { AppserviceError } from "../../src/appservice/index.ts";
import {
  initAppserviceBot,
  type OpenedAppserviceBot,
  openAppserviceBot,
  recoverAppserviceBot,
  resetAppserviceBot,
} from "../../src/bot/appservice/index.ts";
import { BotInitError, BotStartError, CONFIG_FILE, readConfig } from "../../src/bot/index.ts";
import { RecoveryKeyError } from "../../src/client/index.ts";
import { scaledMs } from "../support/budget.ts";
import { freePort } from "../support/cli.ts";
import { startTestDevServer } from "../support/devserver.ts";

/** Whether something accepts TCP connections on the loopback `port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

test("initAppserviceBot refuses a localpart or a non-http endpoint before writing anything", async () => {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-as-api-init-"));
  try {
    const base = { dir: join(dir, "bot"), homeserverUrl: "http://127.0.0.1:1", owners: [] };
    await assert.rejects(
      initAppserviceBot({ ...base, userId: "echobot", url: "http://127.0.0.1:2" }),
      BotInitError,
    );
    await assert.rejects(
      initAppserviceBot({ ...base, userId: "@echobot:localhost", url: "ftp://127.0.0.1:2" }),
      BotInitError,
    );
    await assert.rejects(readConfig(join(dir, "bot", CONFIG_FILE)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("an appservice bot in code: recovery on the first start, a move with the key, a reset", {
  timeout: scaledMs(180_000),
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-as-api-"));
  const botDir = join(dir, "bot");
  const botId = "@mover:localhost";
  const [hsPort, asPort] = [await freePort(), await freePort()];
  const made = await initAppserviceBot({
    dir: botDir,
    homeserverUrl: `http://127.0.0.1:${hsPort}`,
    userId: botId,
    url: `http://127.0.0.1:${asPort}`,
    owners: [],
  });
  const hs = await startTestDevServer({
    port: hsPort,
    appservices: [made.registrationFile],
    appserviceRetry: { baseMs: 20, maxMs: 200 },
  });
  const config = await readConfig(made.configFile);
  const bot = { dir: botDir, config, dataDir: resolve(botDir, config.dataDir) };
  const open = async (): Promise<OpenedAppserviceBot> => openAppserviceBot(bot);
  const stop = (opened: OpenedAppserviceBot) => opened.appservice.close();
  const refusal = (code: string) => (e: unknown) => e instanceof BotStartError && e.code === code;
  try {
    const first = await open();
    const recoveryKey = first.recoveryKey;
    assert.ok(recoveryKey, "the first start returns the recovery key");
    const oldDevice = first.client.deviceId;
    // Nothing listens until the caller's handlers are on: then the endpoint opens, once.
    assert.equal(await accepts(asPort), false, "no transaction before listen()");
    await first.listen();
    assert.equal(await accepts(asPort), true);
    await assert.rejects(first.listen(), (e) => e instanceof AppserviceError && e.code === "LISTENING");
    const status = await first.client.getCrossSigningStatus();
    assert.equal(status.privateKeys.master, true, "the first start made the cross-signing identity");
    assert.equal((await first.client.crypto.recovery.status()).state, "enabled");
    await stop(first);

    const again = await open();
    assert.equal(again.recoveryKey, undefined, "the key is given once");
    assert.equal(again.client.deviceId, oldDevice, "a later start keeps the device");
    await stop(again);
    await assert.rejects(recoverAppserviceBot({ ...bot, recoveryKey }), refusal("DEVICE_PRESENT"));

    // A new machine: the data directory is gone.
    await rm(bot.dataDir, { recursive: true, force: true });
    await assert.rejects(open(), refusal("RECOVERY_REQUIRED"));
    const mistyped = `${recoveryKey.slice(0, -4)}${recoveryKey.slice(-4).split("").reverse().join("")}`;
    assert.notEqual(mistyped, recoveryKey);
    // Refused at the key check, which comes after the new device was made: that device must go.
    await assert.rejects(
      recoverAppserviceBot({ ...bot, recoveryKey: mistyped }),
      (e) => e instanceof RecoveryKeyError && e.code === "BAD_PARITY",
    );
    const moved = await recoverAppserviceBot({ ...bot, recoveryKey });
    assert.notEqual(moved.deviceId, oldDevice);
    assert.equal(moved.crossSigned, true, "the new device is signed by the bot's own identity");
    assert.deepEqual(moved.deletedDevices, [oldDevice], "the old device goes; the mistyped try left none");
    const after = await open();
    assert.equal(
      after.client.deviceId,
      moved.deviceId,
      "the start after a recovery uses the recovered device",
    );
    assert.equal(after.recoveryKey, undefined);
    await stop(after);

    const reset = await resetAppserviceBot(bot);
    assert.deepEqual(reset.deletedDevices, [moved.deviceId]);
    const fresh = await open();
    assert.ok(fresh.recoveryKey, "a reset start makes a new identity and recovery key");
    assert.notEqual(fresh.recoveryKey, recoveryKey);
    await stop(fresh);
  } finally {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
});
