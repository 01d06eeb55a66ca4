// Appservice mode of `keyroom bot`: `bot init DIR --appservice URL` writes a registration file
// beside the config (no account is touched: the homeserver must load the registration first), and
// `bot run DIR` on such a config serves the transactions endpoint and runs the bot as the
// appservice's user, with end-to-end encryption through MSC2409 / MSC3202 (src/appservice). The
// glue lives here because the bot framework is built on the client API alone (scripts/check-layers.ts).
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  Appservice,
  generateRegistration,
  parseRegistration,
  type Registration,
  registrationToYaml,
} from "../../appservice/index.ts";
import { type BotConfig, userIdSchema, writeBotFiles } from "../../bot/index.ts";
import type { Logger, MatrixClient } from "../../index.ts";
import { CliError } from "../errors.ts";

/** The registration file `bot init --appservice` writes, relative to the bot directory. */
export const REGISTRATION_FILE = "registration.yaml";
/** Where the appservice's users keep their stores, inside the bot's data directory. */
export const APPSERVICE_DATA_DIR = "appservice";

export interface AppserviceBotInit {
  dir: string;
  homeserverUrl: string;
  /** The bot's full user ID: it becomes the appservice's sender user. */
  userId: string;
  /** Where the homeserver pushes transactions (the bot's endpoint), e.g. http://127.0.0.1:9000. */
  url: string;
  owners: readonly string[];
}

/** Writes a bot directory in appservice mode; returns the config and registration files. */
export async function initAppserviceBot(
  o: AppserviceBotInit,
): Promise<{ configFile: string; registrationFile: string; registration: Registration }> {
  if (!userIdSchema.safeParse(o.userId).success) {
    throw new CliError(
      "USAGE",
      `--user: appservice mode needs the full user ID (e.g. @echobot:example.org), got "${o.userId}"`,
    );
  }
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new CliError("USAGE", `--appservice: not a URL: ${o.url}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError("USAGE", "--appservice: expected an http(s) URL");
  }
  const localpart = o.userId.slice(1, o.userId.indexOf(":"));
  const registration = generateRegistration({
    id: localpart,
    url: o.url,
    senderLocalpart: localpart,
    serverName: o.userId.slice(o.userId.indexOf(":") + 1),
  });
  const dir = resolve(o.dir);
  const configFile = await writeBotFiles({
    dir,
    config: {
      homeserver: o.homeserverUrl,
      user: o.userId,
      owners: [...o.owners],
      prefix: "!",
      appservice: { registration: `./${REGISTRATION_FILE}` },
    },
    intro:
      `# Appservice mode: the homeserver loads ./${REGISTRATION_FILE} (it holds the tokens: keep it private)\n` +
      `# and pushes transactions to ${o.url}.`,
    secretFiles: [REGISTRATION_FILE],
  });
  const registrationFile = join(dir, REGISTRATION_FILE);
  await writeFile(registrationFile, registrationToYaml(registration), { mode: 0o600, flag: "wx" });
  return { configFile, registrationFile, registration };
}

/** The port the endpoint listens on: the config's, else the registration URL's. */
function listenPort(config: NonNullable<BotConfig["appservice"]>, registration: Registration): number {
  if (config.port !== undefined) return config.port;
  const url = registration.url === null ? undefined : new URL(registration.url);
  const port = url === undefined ? Number.NaN : Number(url.port || (url.protocol === "https:" ? 443 : 80));
  if (!Number.isInteger(port)) {
    throw new CliError("USAGE", "appservice: the registration has no url; set appservice.port in bot.yaml");
  }
  return port;
}

/**
 * Starts the appservice of a bot directory in appservice mode and returns the bot user's client
 * (encryption on; its device cross-signed by its own identity on the first start).
 */
export async function openAppserviceBot(
  dir: string,
  config: BotConfig,
  dataDir: string,
  logger: Logger,
): Promise<{ client: MatrixClient; appservice: Appservice }> {
  const settings = config.appservice;
  if (settings === undefined) throw new CliError("USAGE", "the bot's config has no appservice section");
  const file = resolve(dir, settings.registration);
  let registration: Registration;
  try {
    registration = parseRegistration(await readFile(file, "utf8"));
  } catch (e) {
    throw new CliError("USAGE", `appservice.registration (${file}): ${e instanceof Error ? e.message : e}`);
  }
  const appservice = new Appservice({
    registration,
    homeserverUrl: config.homeserver,
    dataDir: join(dataDir, APPSERVICE_DATA_DIR),
    encryption: { shareWith: config.encryption.shareWith },
    logger,
  });
  try {
    await appservice.start({ port: listenPort(settings, registration), host: settings.host });
    const client = await appservice.user(config.user, { displayName: "Keyroom bot" });
    // No password here (the appservice acts for its users): a first upload needs none.
    if (!(await client.getCrossSigningStatus()).deviceCrossSigned) {
      await client.bootstrapCrossSigning();
      logger.info({ userId: client.userId, deviceId: client.deviceId }, "cross-signing set up");
    }
    return { client, appservice };
  } catch (e) {
    await appservice.close().catch(() => undefined);
    throw e;
  }
}
