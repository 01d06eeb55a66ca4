// A bot directory in appservice mode: the config and a registration file beside it. No account is
// touched: the homeserver must load the registration before the bot's first start.
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { generateRegistration, type Registration, registrationToYaml } from "../../appservice/index.ts";
import { userIdSchema } from "../config.ts";
import { BotInitError, writeBotFiles } from "../init.ts";
import { REGISTRATION_FILE } from "./directory.ts";

export interface AppserviceBotInit {
  dir: string;
  homeserverUrl: string;
  /** The bot's full user ID: it becomes the appservice's sender user. */
  userId: string;
  /** Where the homeserver pushes transactions (the bot's endpoint), e.g. http://127.0.0.1:9000. */
  url: string;
  owners: readonly string[];
}

export interface InitializedAppserviceBot {
  configFile: string;
  /** Holds the tokens: mode 0600, for the homeserver to load. */
  registrationFile: string;
  registration: Registration;
}

/** Writes a bot directory in appservice mode; returns the config and registration files. */
export async function initAppserviceBot(o: AppserviceBotInit): Promise<InitializedAppserviceBot> {
  if (!userIdSchema.safeParse(o.userId).success) {
    throw new BotInitError(
      `appservice mode needs the bot's full user ID (e.g. @echobot:example.org), got "${o.userId}"`,
    );
  }
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new BotInitError(`the appservice endpoint is not a URL: ${o.url}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BotInitError("the appservice endpoint must be an http(s) URL");
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
