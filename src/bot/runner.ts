// Running a bot directory (`keyroom bot run DIR`): its config, its session and stores, its skills,
// and with `watch` a reload of each skill whose file changes, without restarting the client.
import { type FSWatcher, watch as watchFile } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Logger, MatrixClient } from "../index.ts";
import { Bot } from "./bot.ts";
import { type BotConfig, CONFIG_FILE, readConfig } from "./config.ts";
import { startControlServer } from "./control.ts";
import { SqliteLocalStore } from "./local-store.ts";
import { botPaths, openBotClient } from "./session.ts";
import { installSkill, loadSkill, type Skill } from "./skills.ts";
import { MIN_WEBHOOK_SECRET_LENGTH, startWebhookServer, type WebhookServer } from "./webhooks.ts";

/** Wait after a skill file changed before reloading it (editors write in several steps). */
export const RELOAD_DEBOUNCE_MS = 150;

export interface RunBotOptions {
  logger: Logger;
  /** Reload changed skills. */
  watch?: boolean;
  /** Environment (for `webhooks.secretEnv`). */
  env?: NodeJS.ProcessEnv;
  /** Instead of the bot's own session (an appservice user, a test): a ready client. */
  client?: MatrixClient;
}

export interface RunningBot {
  readonly bot: Bot;
  readonly config: BotConfig;
  readonly webhooks: WebhookServer | undefined;
  /** Reloads one skill by file (what `watch` does on a change). */
  reload(file: string): Promise<void>;
  stop(): Promise<void>;
}

/** What `Bot` takes from a config. */
export function botOptionsFrom(config: BotConfig) {
  return {
    prefix: config.prefix,
    owners: config.owners,
    ...(config.invites !== undefined
      ? { invites: Array.isArray(config.invites) ? { allow: config.invites } : config.invites }
      : {}),
    ...(config.inviteLimits ? { inviteLimits: config.inviteLimits } : {}),
    ...(config.users ? { users: config.users } : {}),
    ...(config.rooms ? { rooms: config.rooms } : {}),
    ...(config.answerLimits ? { answerLimits: config.answerLimits } : {}),
    ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
    requireVerifiedOwners: config.encryption.requireVerifiedOwners,
    readReceipts: config.readReceipts,
    ...(config.lateEvents ? { lateEvents: config.lateEvents } : {}),
    ...(config.timezone ? { timezone: config.timezone } : {}),
  };
}

export async function runBotDir(dir: string, opts: RunBotOptions): Promise<RunningBot> {
  const logger = opts.logger;
  const config = await readConfig(resolve(dir, CONFIG_FILE));
  const dataDir = resolve(dir, config.dataDir);
  const client =
    opts.client ??
    (
      await openBotClient({
        dataDir,
        homeserverUrl: config.homeserver,
        userId: config.user,
        shareWith: config.encryption.shareWith,
        logger,
        resetHint: `keyroom bot reset ${dir}`,
        recoverHint: `keyroom bot recover ${dir}`,
      })
    ).client;
  const local = await SqliteLocalStore.open(botPaths(dataDir).localStore);
  const bot = new Bot({ ...botOptionsFrom(config), client, logger, localStore: local });
  const files = config.skills.map((s) => resolve(dir, s));
  const installed = new Map<string, Skill>();
  let generation = 0;
  /** Installs run one at a time, in the order asked (a setup may await): never two at once. */
  let installing: Promise<unknown> = Promise.resolve();
  const install = (file: string, fresh: boolean): Promise<void> => {
    const loading = loadSkill(file, fresh ? ++generation : 0);
    loading.catch(() => undefined); // a failed load is reported by `run`, not as unhandled meanwhile
    const run = installing.then(async () => swap(file, await loading, fresh));
    installing = run.catch(() => undefined);
    return run;
  };
  const swap = async (file: string, skill: Skill, fresh: boolean) => {
    const previous = installed.get(file);
    if (previous !== undefined) bot.removeScope(previous.name);
    try {
      await installSkill(bot, skill, config.settings[skill.name], logger);
    } catch (e) {
      // Its setup failed (and its handlers are gone): the previous version goes back.
      if (previous !== undefined) await installSkill(bot, previous, config.settings[previous.name], logger);
      throw e;
    }
    installed.set(file, skill);
    logger.info({ skill: skill.name, file }, fresh ? "skill reloaded" : "skill loaded");
  };
  let webhooks: WebhookServer | undefined;
  let control: { close(): Promise<void> } | undefined;
  const watchers: FSWatcher[] = [];
  try {
    for (const file of files) await install(file, false);
    await bot.start();
    control = await startControlServer(bot, dataDir, logger);
    if (config.webhooks) {
      const secret =
        config.webhooks.secret ??
        (config.webhooks.secretEnv ? (opts.env ?? process.env)[config.webhooks.secretEnv] : undefined);
      if (secret === undefined || secret.length < MIN_WEBHOOK_SECRET_LENGTH) {
        throw new Error(
          `webhooks: set webhooks.secret, or webhooks.secretEnv to a variable holding ${MIN_WEBHOOK_SECRET_LENGTH}+ characters`,
        );
      }
      webhooks = await startWebhookServer(
        bot,
        { port: config.webhooks.port, host: config.webhooks.host, secret },
        logger,
      );
    }
  } catch (e) {
    await control?.close();
    await bot.stop().catch(() => undefined);
    await client.close().catch(() => undefined);
    local.close();
    throw e;
  }
  const reload = async (file: string) => {
    try {
      await install(file, true);
    } catch (err) {
      logger.error({ err, file }, "skill reload failed; the previous version stays");
    }
  };
  if (opts.watch) {
    // The folder is watched, not the file: editors often save by replacing the file.
    const timers = new Map<string, NodeJS.Timeout>();
    for (const folder of new Set(files.map((f) => dirname(f)))) {
      watchers.push(
        watchFile(folder, (_event, name) => {
          const file = name === null ? undefined : files.find((f) => f === join(folder, name.toString()));
          if (file === undefined) return;
          clearTimeout(timers.get(file));
          timers.set(
            file,
            setTimeout(() => void reload(file), RELOAD_DEBOUNCE_MS),
          );
        }),
      );
    }
  }
  return {
    bot,
    config,
    get webhooks() {
      return webhooks;
    },
    reload,
    stop: async () => {
      for (const w of watchers) w.close();
      await control?.close();
      await webhooks?.close();
      await bot.stop();
      await client.close();
      local.close();
    },
  };
}
