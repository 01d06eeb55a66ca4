import assert from "node:assert/strict";
import { test } from "node:test";
import { BotConfigError, parseConfig } from "./config.ts";
import { botOptionsFrom } from "./runner.ts";

test("a minimal config gets its defaults", () => {
  const c = parseConfig('homeserver: https://matrix.example.org\nuser: "@bot:example.org"\n');
  assert.equal(c.prefix, "!");
  assert.deepEqual(c.owners, []);
  assert.equal(c.encryption.shareWith, "all");
  assert.equal(c.dataDir, ".keyroom");
  assert.equal(c.inviteLimits, undefined, "the bot applies DEFAULT_MAX_ROOMS_ON_INVITE and the rate");
  const limited = parseConfig(
    'homeserver: https://m.example.org\nuser: "@bot:example.org"\ninviteLimits: { maxRooms: 50, perInviterPerHour: 0.5 }\n',
  );
  assert.deepEqual(limited.inviteLimits, { maxRooms: 50, perInviterPerHour: 0.5 });
  assert.equal(c.lateEvents, undefined, "the bot applies DEFAULT_LATE_EVENT_MAX_DELAY_MS");
  const late = parseConfig(
    'homeserver: https://m.example.org\nuser: "@bot:example.org"\nlateEvents: { maxDelayMs: 60000, notify: false }\n',
  );
  assert.deepEqual(late.lateEvents, { maxDelayMs: 60_000, notify: false });
  assert.deepEqual(botOptionsFrom(late).lateEvents, { maxDelayMs: 60_000, notify: false });
});

test("room lists take room IDs (also v12's, without a server), not aliases, which would match nothing", () => {
  const base = 'homeserver: https://m.example.org\nuser: "@bot:example.org"\n';
  const ok = parseConfig(
    `${base}rooms: { allow: ["!abc:example.org", "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"] }\n`,
  );
  assert.deepEqual(ok.rooms?.allow, ["!abc:example.org", "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"]);
  assert.throws(
    () => parseConfig(`${base}rooms: { allow: ["#ops:example.org"] }\n`, "bot.yaml"),
    /bot\.yaml: rooms\.allow\[0\]: expected a room ID like !abc:example\.org, not an alias/,
  );
});

test("errors name each bad key", () => {
  const bad = [
    "homeserver: ftp://x",
    'user: "bot"',
    "owners: ['@a:b', 'c']",
    "encryption: { shareWith: everyone }",
    "rateLimit: { perMinute: 0 }",
    "inviteLimits: { maxRooms: 1.5, perInviterPerHour: 0, joins: 3 }",
    "lateEvents: { maxDelayMs: -1, notify: sometimes, maxAge: 5 }",
    "colour: blue",
  ].join("\n");
  assert.throws(
    () => parseConfig(bad, "bot.yaml"),
    (e: unknown) => {
      assert.ok(e instanceof BotConfigError);
      const text = e.message;
      for (const key of [
        "homeserver:",
        "user:",
        "owners[1]:",
        "encryption.shareWith:",
        "rateLimit.perMinute:",
        "inviteLimits.maxRooms:",
        "inviteLimits.perInviterPerHour:",
        "inviteLimits.joins: unknown key",
        "lateEvents.maxDelayMs:",
        "lateEvents.notify:",
        "lateEvents.maxAge: unknown key",
        "colour: unknown key",
      ]) {
        assert.ok(text.includes(key), `${key} in ${text}`);
      }
      assert.ok(text.startsWith("bot.yaml: "));
      return true;
    },
  );
  assert.throws(() => parseConfig("user: '@a:b'\n"), /homeserver: missing/);
});

test("YAML syntax errors give the line", () => {
  assert.throws(() => parseConfig("homeserver: [\nuser: x"), /line \d+/);
  assert.throws(() => parseConfig("user: a\nuser: b\n"), BotConfigError, "duplicate keys are refused");
});
