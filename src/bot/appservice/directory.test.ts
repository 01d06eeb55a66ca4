// The bot user's stores in an appservice bot's data directory, also where an earlier version put them.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { virtualUserPaths } from "../../appservice/index.ts";
import { APPSERVICE_DATA_DIR, botUserPaths, localDevice } from "./directory.ts";

test("a bot user with + in its localpart finds the device an earlier version stored", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "keyroom-as-bot-dir-"));
  const user = "@my+bot:hs";
  try {
    assert.equal(localDevice(dataDir, user), "none");
    assert.equal(
      botUserPaths(dataDir, user).dir,
      virtualUserPaths(join(dataDir, APPSERVICE_DATA_DIR), user).dir,
    );
    const earlier = join(dataDir, APPSERVICE_DATA_DIR, "_my_bot_hs");
    await mkdir(earlier, { recursive: true });
    const paths = virtualUserPaths(join(dataDir, APPSERVICE_DATA_DIR), user);
    for (const file of [paths.clientStore, paths.cryptoStore]) {
      await writeFile(join(earlier, file.slice(paths.dir.length + 1)), "");
    }
    assert.equal(botUserPaths(dataDir, user).dir, earlier);
    assert.equal(localDevice(dataDir, user), "complete");
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
