// An appservice bot whose user has a + in its localpart, with a data directory an earlier version
// wrote (its stores under the directory name every such character became `_` in): a start finds
// the device there, and a recovery after its keys were lost that fails (a mistyped key) leaves no
// new device's stores behind, so the right key then recovers it.
import assert from "node:assert/strict";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { botUserPaths } from "../../src/bot/appservice/directory.ts";
import {
  APPSERVICE_DATA_DIR,
  initAppserviceBot,
  openAppserviceBot,
  recoverAppserviceBot,
} from "../../src/bot/appservice/index.ts";
import { readConfig } from "../../src/bot/index.ts";
import { RecoveryKeyError } from "../../src/client/index.ts";
import { scaledMs } from "../support/budget.ts";
import { freePort } from "../support/cli.ts";
import { startTestDevServer } from "../support/devserver.ts";

test("an appservice bot with + in its localpart: an earlier version's directory is found and recovered", {
  timeout: scaledMs(180_000),
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "keyroom-as-dirnames-"));
  const botDir = join(dir, "bot");
  const [hsPort, asPort] = [await freePort(), await freePort()];
  const made = await initAppserviceBot({
    dir: botDir,
    homeserverUrl: `http://127.0.0.1:${hsPort}`,
    userId: "@mo+ver:localhost",
    url: `http://127.0.0.1:${asPort}`,
    owners: [],
  });
  const hs = await startTestDevServer({ port: hsPort, appservices: [made.registrationFile] });
  const config = await readConfig(made.configFile);
  const bot = { dir: botDir, config, dataDir: resolve(botDir, config.dataDir) };
  try {
    const first = await openAppserviceBot(bot);
    const recoveryKey = first.recoveryKey;
    assert.ok(recoveryKey);
    const device = first.client.deviceId;
    await first.appservice.close();
    // Where an earlier version kept the bot user's stores.
    const earlier = join(bot.dataDir, APPSERVICE_DATA_DIR, "_mo_ver_localhost");
    await rename(botUserPaths(bot.dataDir, config.user).dir, earlier);
    const again = await openAppserviceBot(bot);
    assert.equal(again.client.deviceId, device, "the device is found");
    await again.appservice.close();
    // Its keys are lost; a recovery with a mistyped key fails and leaves nothing behind.
    await rm(botUserPaths(bot.dataDir, config.user).cryptoStore, { force: true });
    const mistyped = `${recoveryKey.slice(0, -4)}${recoveryKey.slice(-4).split("").reverse().join("")}`;
    // Refused at the key check, after the new device and its stores were made.
    await assert.rejects(
      recoverAppserviceBot({ ...bot, recoveryKey: mistyped }),
      (e) => e instanceof RecoveryKeyError && e.code === "BAD_PARITY",
    );
    const moved = await recoverAppserviceBot({ ...bot, recoveryKey });
    assert.notEqual(moved.deviceId, device);
    assert.equal(moved.crossSigned, true);
  } finally {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
});
