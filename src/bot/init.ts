// `keyroom bot init`: writes a runnable bot directory (config, an echo skill, a .gitignore for the
// data directory) and makes its first start: registers the account where the server allows it,
// else logs in, and sets up cross-signing. `keyroom bot run DIR` then resumes that device.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import type { Logger } from "../index.ts";
import { BotConfigError, CONFIG_FILE, userIdSchema, validateConfig } from "./config.ts";
import { openBotClient } from "./session.ts";

export interface InitBotOptions {
  dir: string;
  homeserverUrl: string;
  /** Localpart or full user ID. */
  user: string;
  password: string;
  owners: readonly string[];
  logger: Logger;
}

export interface InitializedBot {
  userId: string;
  deviceId: string;
  configFile: string;
  /** Shown once to the operator: with it (and the password) the bot moves to a new machine. */
  recoveryKey: string | undefined;
}

export const ECHO_SKILL_FILE = "skills/echo.mjs";

/** The echo skill `init` writes: plain JavaScript, so it runs without a build step or imports. */
export const ECHO_SKILL = `// A skill: a name and a setup function that registers handlers. Edit it while
// \`keyroom bot run --watch\` runs and the bot reloads it.
export default {
  name: "echo",
  setup(bot) {
    // A notice: bots do not answer notices, so two echo bots never echo each other.
    bot.command(
      "echo",
      { args: { text: bot.arg.rest() }, help: "say TEXT back" },
      (ctx, { text }) => ctx.notice(text),
    );
  },
};
`;

export class BotInitError extends Error {
  override readonly name = "BotInitError";
}

export async function initBotDir(o: InitBotOptions): Promise<InitializedBot> {
  const dir = resolve(o.dir);
  const existing = join(dir, CONFIG_FILE);
  if (existsSync(existing)) throw new BotInitError(`${existing} exists already: this is a bot; run it`);
  // Checked before the account is touched.
  const bad = o.owners.filter((owner) => !userIdSchema.safeParse(owner).success);
  if (bad.length > 0)
    throw new BotConfigError(
      "--owner",
      bad.map((b) => `"${b}": expected a user ID like @name:example.org`),
    );
  const dataDir = join(dir, ".keyroom");
  const { client, recoveryKey } = await openBotClient({
    dataDir,
    homeserverUrl: o.homeserverUrl,
    userId: o.user,
    password: o.password,
    register: true,
    deviceDisplayName: "Keyroom bot",
    logger: o.logger,
    resetHint: `rm -r ${dataDir}`,
    recoverHint: `keyroom bot recover ${o.dir}`,
  });
  const userId = client.userId;
  const deviceId = client.deviceId;
  try {
    // One sync: the bot starts reading from now on (not the history of rooms it was in before).
    await client.syncOnce({ timeoutMs: 0 });
  } finally {
    await client.close();
  }
  const configFile = await writeBotFiles({
    dir,
    config: { homeserver: o.homeserverUrl, user: userId, owners: [...o.owners], prefix: "!" },
    intro: `# Invitations are accepted from ${o.owners.length > 0 ? "the owners" : "anyone (no owner named)"}; set \`invites\` to change that.`,
  });
  return { userId, deviceId, configFile, recoveryKey };
}

/**
 * Writes a bot directory's files: `bot.yaml` (from `config`, with the echo skill), the echo skill,
 * and a .gitignore for the data directory and any other `secretFiles` (e.g. an appservice
 * registration, which holds tokens). Returns the config file's path.
 */
export async function writeBotFiles(o: {
  dir: string;
  config: Record<string, unknown>;
  /** Comment lines after the reference line. */
  intro: string;
  secretFiles?: readonly string[];
}): Promise<string> {
  const dir = resolve(o.dir);
  const configFile = join(dir, CONFIG_FILE);
  const config = { ...o.config, skills: [`./${ECHO_SKILL_FILE}`] };
  validateConfig(config, configFile);
  const yaml = [
    "# A Keyroom bot. Reference: docs/bots.md (config reference).",
    o.intro,
    stringify(config).trimEnd(),
    "",
  ].join("\n");
  await mkdir(join(dir, "skills"), { recursive: true });
  await writeFile(configFile, yaml, { mode: 0o644 });
  const skill = join(dir, ECHO_SKILL_FILE);
  if (!existsSync(skill)) await writeFile(skill, ECHO_SKILL);
  const gitignore = join(dir, ".gitignore");
  if (!existsSync(gitignore))
    await writeFile(
      gitignore,
      [
        "# The bot's session and keys: never commit them.",
        ".keyroom/",
        ...(o.secretFiles ?? []).map((f) => `/${f}`),
        "",
      ].join("\n"),
    );
  return configFile;
}
