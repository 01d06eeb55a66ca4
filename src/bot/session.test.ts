import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BotStartError, botPaths, openBotClient } from "./session.ts";

test("keepSyncPosition resumes a bot's device only: with none here it refuses, logging nothing in", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "keyroom-bot-session-"));
  try {
    let asked = 0;
    await assert.rejects(
      openBotClient({
        dataDir,
        homeserverUrl: "https://hs.invalid",
        userId: "@bot:hs.invalid",
        password: "pw",
        keepSyncPosition: true,
        client: {
          fetch: async () => {
            asked++;
            return new Response("{}", { status: 500 });
          },
        },
      }),
      (e) => e instanceof BotStartError && e.code === "NOT_STARTED",
    );
    assert.equal(asked, 0, "no login was tried");
    assert.equal(existsSync(botPaths(dataDir).cryptoStore), false, "no encryption store was made");
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
