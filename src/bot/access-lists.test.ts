// Lists of users (`invites`, `users.allow` / `users.deny`) name users one by one, or every user of
// a server as `*:example.org` (or `@*:example.org`).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Logger } from "../index.ts";
import { Bot } from "./bot.ts";
import { parseConfig } from "./config.ts";
import { allowedBy } from "./dispatch.ts";
import { botOptionsFrom } from "./runner.ts";
import { FAKE_BOT_USER, fakeBotClient, fakeMember, fakeMessage } from "./testing/fake-client.ts";

test("*:server in a list matches that server's users, and only them", () => {
  const list = { allow: ["*:friends.example", "@ann:other.example"], deny: ["@*:friends.example:8448"] };
  assert.ok(allowedBy(list, "@carol:friends.example"));
  assert.ok(allowedBy(list, "@ann:other.example"));
  assert.ok(!allowedBy(list, "@bob:other.example"));
  assert.ok(!allowedBy(list, "@carol:evil.friends.example"), "not a suffix match");
  assert.ok(!allowedBy(list, "@carol:friends.example:8448"), "denied: that server with its port");
});

test("invites and users lists from bot.yaml take *:server", async () => {
  const config = parseConfig(
    [
      "homeserver: https://m.example.org",
      'user: "@bot:fake.example"',
      'invites: ["*:friends.example"]',
      'users: { deny: ["*:evil.example"] }',
    ].join("\n"),
  );
  const joined: string[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: (obj?: unknown, msg?: string) => {
      if (msg === "joined on invitation") joined.push((obj as { roomId: string }).roomId);
    },
    warn: () => undefined,
    error: () => undefined,
  };
  const f = await fakeBotClient();
  const bot = new Bot({ ...botOptionsFrom(config), client: f.client, logger });
  bot.command("ping", {}, (ctx) => ctx.notice("pong"));
  await bot.start();
  await f.feed({});
  await f.feedInvite("!friend:fake.example", "@carol:friends.example");
  await f.feedInvite("!stranger:fake.example", "@dave:elsewhere.example");
  assert.deepEqual(joined, ["!friend:fake.example"]);
  await f.feedTimeline("!r:fake.example", [
    fakeMember(FAKE_BOT_USER, "join"),
    fakeMessage("@mallory:evil.example", "!ping"),
    fakeMessage("@carol:friends.example", "!ping"),
  ]);
  assert.deepEqual(
    f.sent.map((s) => s.content.body),
    ["pong"],
  );
  await bot.stop();
});
