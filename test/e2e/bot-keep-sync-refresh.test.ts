// `keepSyncPosition` (`keyroom bot verify` beside a stopped bot) syncs from a copy in memory of
// the bot's client store. A renewal of the access token while it runs spends the stored refresh
// token (the server revokes it once the new access token is used): the renewed tokens must reach
// the bot's store, or the bot's next start is logged out.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openBotClient } from "../../src/bot/index.ts";
import { type Clock, systemClock } from "../../src/index.ts";
import { startTestDevServer } from "../support/devserver.ts";

const LIFETIME_MS = 60_000;

test("a keepSyncPosition client's renewed tokens are saved in the bot's store", async () => {
  let now = 1_000_000;
  const clock: Clock = { now: () => now, random: () => 0.5, sleep: (ms, s) => systemClock.sleep(ms, s) };
  const hs = await startTestDevServer({ accessTokenLifetimeMs: LIFETIME_MS, now: () => now });
  const dataDir = join(await mkdtemp(join(tmpdir(), "keyroom-bot-keep-refresh-")), "bot");
  try {
    const first = await openBotClient({
      dataDir,
      homeserverUrl: hs.baseUrl,
      userId: "keeper",
      password: "pw",
      register: true,
      client: { clock },
    });
    const userId = first.client.userId;
    await first.client.close();

    const side = await openBotClient({
      dataDir,
      homeserverUrl: hs.baseUrl,
      userId,
      keepSyncPosition: true,
      client: { clock },
    });
    // Past the token's lifetime: this request renews the tokens first.
    now += 2 * LIFETIME_MS;
    assert.equal((await side.client.whoami()).user_id, userId);
    await side.client.close();

    // The bot's next start, later still: its stored tokens must be the renewed ones.
    now += 2 * LIFETIME_MS;
    const again = await openBotClient({ dataDir, homeserverUrl: hs.baseUrl, userId, client: { clock } });
    const loggedOut: boolean[] = [];
    again.client.on("session.loggedOut", ({ softLogout }) => void loggedOut.push(softLogout));
    try {
      assert.equal((await again.client.whoami()).user_id, userId);
      await again.client.startSync();
      assert.deepEqual(loggedOut, []);
      assert.equal(again.client.isLoggedIn, true);
    } finally {
      await again.client.close();
    }
  } finally {
    await hs.close();
    await rm(join(dataDir, ".."), { recursive: true, force: true });
  }
});
