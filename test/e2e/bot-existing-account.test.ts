// `keyroom bot init DIR --user NAME` registers NAME "on servers that allow it, else logs in"
// (issue 15): with a localpart for an account that already exists, the first start logged in with
// the crypto store's device lookup on, which needs a full user ID, and failed
// (RESTORE_NEEDS_USER_ID). A first start has no stored device to look up.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openBotClient } from "../../src/bot/index.ts";
import { startTestDevServer } from "../support/devserver.ts";

test("a bot's first start with the localpart of an account that exists logs in to it", async () => {
  const hs = await startTestDevServer();
  const dir = await mkdtemp(join(tmpdir(), "keyroom-bot-existing-"));
  try {
    await hs.register("existing", "pw");
    const opened = await openBotClient({
      dataDir: join(dir, "bot"),
      homeserverUrl: hs.baseUrl,
      userId: "existing",
      password: "pw",
      register: true,
    });
    assert.equal(opened.firstStart, true);
    assert.equal(opened.client.userId, `@existing:${hs.serverName}`);
    assert.ok(opened.recoveryKey);
    await opened.client.close();
    // The next start resumes that device, the localpart still enough.
    const again = await openBotClient({
      dataDir: join(dir, "bot"),
      homeserverUrl: hs.baseUrl,
      userId: "existing",
    });
    assert.equal(again.firstStart, false);
    assert.equal(again.client.deviceId, opened.client.deviceId);
    await again.client.close();
  } finally {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
});
