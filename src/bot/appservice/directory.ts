// What an appservice bot's directory holds, shared by its start, recovery and reset: the
// registration beside the config, the users' stores under the data directory, the reset marker.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import {
  Appservice,
  parseRegistration,
  type Registration,
  virtualUserPaths,
} from "../../appservice/index.ts";
import type { Logger } from "../../index.ts";
import { type BotConfig, BotConfigError, CONFIG_FILE } from "../config.ts";

/** The registration file `initAppserviceBot` writes, relative to the bot directory. */
export const REGISTRATION_FILE = "registration.yaml";
/** Where the appservice's users keep their stores, inside the bot's data directory. */
export const APPSERVICE_DATA_DIR = "appservice";
/**
 * Written in the data directory by a reset: the next start makes a new cross-signing identity
 * (and recovery key) rather than refusing because the account already has one.
 */
export const RESET_MARKER_FILE = "reset-identity";
/** The display name of the bot user's devices. */
export const BOT_DEVICE_NAME = "Keyroom bot";

/** An appservice bot's directory, as its start, recovery and reset take it. */
export interface AppserviceBotDir {
  /** The bot directory: the config's `appservice.registration` is relative to it. */
  dir: string;
  config: BotConfig;
  /** The data directory (usually `resolve(dir, config.dataDir)`). */
  dataDir: string;
  logger?: Logger;
}

export type AppserviceSettings = NonNullable<BotConfig["appservice"]>;

/** The bot's appservice (`dataDir` undefined: nothing stored, no user brought back at start). */
export async function appserviceFor(
  dir: string,
  config: BotConfig,
  dataDir: string | undefined,
  logger: Logger,
): Promise<{ appservice: Appservice; registration: Registration; settings: AppserviceSettings }> {
  const configFile = join(dir, CONFIG_FILE);
  const settings = config.appservice;
  if (settings === undefined) throw new BotConfigError(configFile, ["appservice: the section is missing"]);
  const file = resolve(dir, settings.registration);
  let registration: Registration;
  try {
    registration = parseRegistration(await readFile(file, "utf8"));
  } catch (e) {
    throw new BotConfigError(configFile, [
      `appservice.registration (${file}): ${e instanceof Error ? e.message : e}`,
    ]);
  }
  const appservice = new Appservice({
    registration,
    homeserverUrl: config.homeserver,
    ...(dataDir !== undefined ? { dataDir: join(dataDir, APPSERVICE_DATA_DIR) } : {}),
    encryption: { shareWith: config.encryption.shareWith },
    logger,
  });
  return { appservice, registration, settings };
}

/** The port the endpoint listens on: the config's, else the registration URL's. */
export function listenPort(dir: string, settings: AppserviceSettings, registration: Registration): number {
  if (settings.port !== undefined) return settings.port;
  const url = registration.url === null ? undefined : new URL(registration.url);
  const port = url === undefined ? Number.NaN : Number(url.port || (url.protocol === "https:" ? 443 : 80));
  if (!Number.isInteger(port)) {
    throw new BotConfigError(join(dir, CONFIG_FILE), [
      "appservice.port: the registration has no url, so the port must be set here",
    ]);
  }
  return port;
}

/**
 * The bot user's stores in the data directory. A bot user with an unusual ID (`+` or `/` in its
 * localpart) whose directory an earlier version named (every such character an `_`) keeps it: the
 * bot's user is the only one there, so that name cannot be another user's.
 */
export function botUserPaths(dataDir: string, userId: string) {
  const root = join(dataDir, APPSERVICE_DATA_DIR);
  const paths = virtualUserPaths(root, userId);
  const earlier = join(root, userId.replace(/[^A-Za-z0-9._=-]/g, "_"));
  if (existsSync(paths.dir) || !existsSync(earlier)) return paths;
  return {
    dir: earlier,
    clientStore: join(earlier, basename(paths.clientStore)),
    cryptoStore: join(earlier, basename(paths.cryptoStore)),
  };
}

/** What this machine holds of the bot user's device: all of it, a session whose keys are gone, or nothing. */
export function localDevice(dataDir: string, userId: string): "complete" | "no_store" | "none" {
  const paths = botUserPaths(dataDir, userId);
  if (!existsSync(paths.clientStore)) return "none";
  return existsSync(paths.cryptoStore) ? "complete" : "no_store";
}
