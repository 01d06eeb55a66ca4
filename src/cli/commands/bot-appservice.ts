// Appservice mode of `keyroom bot`: `bot init DIR --appservice URL` writes a registration file
// beside the config (no account is touched: the homeserver must load the registration first), and
// `bot run DIR` on such a config serves the transactions endpoint and runs the bot as the
// appservice's user, with end-to-end encryption through MSC2409 / MSC3202 (src/appservice). The
// glue lives here because the bot framework is built on the client API alone (scripts/check-layers.ts).
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  Appservice,
  generateRegistration,
  parseRegistration,
  type Registration,
  registrationToYaml,
  virtualUserPaths,
} from "../../appservice/index.ts";
import { type BotConfig, BotStartError, userIdSchema, writeBotFiles } from "../../bot/index.ts";
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

/** How the refusals name the commands that get the operator out (`keyroom bot recover DIR`, ...). */
export interface AppserviceBotHints {
  recover: string;
  reset: string;
}

/**
 * Written in the data directory by `bot reset`: the next start makes a new cross-signing identity
 * (and recovery key) rather than refusing because the account already has one.
 */
export const RESET_MARKER_FILE = "reset-identity";

export interface OpenedAppserviceBot {
  client: MatrixClient;
  appservice: Appservice;
  /** This start set up recovery: the key to show the operator once (never stored, never logged). */
  recoveryKey?: string;
}

/** The bot's appservice (`dataDir` undefined: nothing stored, no user brought back at start). */
function appserviceFor(
  dir: string,
  config: BotConfig,
  dataDir: string | undefined,
  logger: Logger,
): Promise<{ appservice: Appservice; registration: Registration; settings: AppserviceSettings }> {
  return (async () => {
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
      ...(dataDir !== undefined ? { dataDir: join(dataDir, APPSERVICE_DATA_DIR) } : {}),
      encryption: { shareWith: config.encryption.shareWith },
      logger,
    });
    return { appservice, registration, settings };
  })();
}

type AppserviceSettings = NonNullable<BotConfig["appservice"]>;

/** What this machine holds of the bot user's device: all of it, a session whose keys are gone, or nothing. */
function localDevice(dataDir: string, userId: string): "complete" | "no_store" | "none" {
  const paths = virtualUserPaths(join(dataDir, APPSERVICE_DATA_DIR), userId);
  if (!existsSync(paths.clientStore)) return "none";
  return existsSync(paths.cryptoStore) ? "complete" : "no_store";
}

/**
 * Starts the appservice of a bot directory in appservice mode and returns the bot user's client.
 * The first start creates the device, then sets up recovery as a bot with its own account does:
 * cross-signing (this device signed), a key backup and secret storage behind one recovery key,
 * returned once. An appservice user needs no password for that: its first cross-signing upload
 * needs none (MSC3967), and no upload of recovery does. A start that finds no device here while
 * the account has an identity refuses (`RECOVERY_REQUIRED`), and one that finds a device whose
 * keys are gone refuses (`NO_STORE`): neither makes a device behind the operator's back.
 */
export async function openAppserviceBot(
  dir: string,
  config: BotConfig,
  dataDir: string,
  logger: Logger,
  hints: AppserviceBotHints,
): Promise<OpenedAppserviceBot> {
  const local = localDevice(dataDir, config.user);
  if (local === "no_store") {
    const paths = virtualUserPaths(join(dataDir, APPSERVICE_DATA_DIR), config.user);
    throw new BotStartError(
      "NO_STORE",
      `${paths.dir} has the device of ${config.user}, but its encryption store (${paths.cryptoStore}) is ` +
        `missing, so the device's keys are gone. Recover with the recovery key that the first start printed ` +
        `(${hints.recover}: a new device gets the bot's identity, room keys and state back), restore the data ` +
        `directory from a backup, or reset (${hints.reset}: the next start makes a new identity, verified again).`,
    );
  }
  const { appservice, registration, settings } = await appserviceFor(dir, config, dataDir, logger);
  const markerFile = join(dataDir, RESET_MARKER_FILE);
  const reset = local === "none" && (await markerFor(markerFile)) === config.user;
  try {
    if (local === "none" && !reset && (await appservice.hasCrossSigningIdentity(config.user))) {
      throw new BotStartError(
        "RECOVERY_REQUIRED",
        `${config.user} has a cross-signing identity, but ${dataDir} has no device of it (a new machine, or a lost ` +
          `data directory). Recover with the recovery key that the first start printed (${hints.recover}: a new ` +
          `device gets the bot's identity, room keys and state back), restore the data directory from a backup, or ` +
          `reset (${hints.reset}: the next start makes a new identity, verified again).`,
      );
    }
    await appservice.start({ port: listenPort(settings, registration), host: settings.host });
    const client = await appservice.user(config.user, { displayName: BOT_DEVICE_NAME });
    const recoveryKey = await setUpRecovery(client, local === "none", reset, logger);
    if (reset) await rm(markerFile, { force: true });
    return { client, appservice, ...(recoveryKey !== undefined ? { recoveryKey } : {}) };
  } catch (e) {
    await appservice.close().catch(() => undefined);
    throw e;
  }
}

/** The display name of the bot user's devices. */
const BOT_DEVICE_NAME = "Keyroom bot";

async function markerFor(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    return undefined;
  }
}

/**
 * Recovery on a first start (a new identity after a reset); on a later start, what an interrupted
 * first start, or a bot set up before appservice bots had recovery, left out: returns the new
 * recovery key, if one was made.
 */
async function setUpRecovery(
  client: MatrixClient,
  firstStart: boolean,
  reset: boolean,
  logger: Logger,
): Promise<string | undefined> {
  const recovery = client.crypto.recovery;
  const where = { userId: client.userId, deviceId: client.deviceId };
  if (reset) {
    const { recoveryKey } = await recovery.resetIdentity();
    logger.info(where, "new cross-signing identity, key backup and secret storage set up");
    return recoveryKey;
  }
  const status = await client.getCrossSigningStatus();
  const held = status.privateKeys.master && status.privateKeys.selfSigning && status.privateKeys.userSigning;
  if (!firstStart && status.masterKey !== undefined && !held) return undefined; // recovered elsewhere: nothing to add
  if (!firstStart && held && (await recovery.status()).state !== "disabled") return undefined;
  const { recoveryKey } = await recovery.enable();
  logger.info(where, "cross-signing, key backup and secret storage set up");
  return recoveryKey;
}

export interface RecoveredAppserviceBot {
  userId: string;
  deviceId: string;
  crossSigned: boolean;
  restoredKeys: number;
  /** The user's other devices, deleted: the appservice made them all, and their keys are gone. */
  deletedDevices: string[];
}

/**
 * Brings an appservice bot back on this machine with its recovery key: a new device for the bot
 * user (MSC4190, else an appservice login; no password), its cross-signing keys and the backup key
 * from secret storage (the device gets signed), the room keys restored from the backup, and the
 * user's other devices deleted. The endpoint does not listen meanwhile: the homeserver keeps the
 * transactions for `bot run`.
 */
export async function recoverAppserviceBot(
  dir: string,
  config: BotConfig,
  dataDir: string,
  recoveryKey: string,
  logger: Logger,
  hints: { run: string },
): Promise<RecoveredAppserviceBot> {
  const paths = virtualUserPaths(join(dataDir, APPSERVICE_DATA_DIR), config.user);
  const local = localDevice(dataDir, config.user);
  if (local === "complete") {
    throw new CliError("USAGE", `${dataDir} still has the bot's device and stores: run it (${hints.run})`);
  }
  // A device whose keys are gone: its session goes (the server's device goes with the others below).
  if (local === "no_store") await rm(paths.dir, { recursive: true, force: true });
  const { appservice } = await appserviceFor(dir, config, dataDir, logger);
  let created: MatrixClient | undefined;
  try {
    await appservice.start();
    const client = await appservice.user(config.user, { displayName: BOT_DEVICE_NAME });
    created = client;
    const result = await client.crypto.recovery.recover({ recoveryKey });
    created = undefined;
    const others = (await client.devices.list()).filter((d) => !d.current).map((d) => d.deviceId);
    let deletedDevices: string[] = [];
    try {
      await appservice.deleteDevices(config.user, others);
      deletedDevices = others;
    } catch (err) {
      logger.warn(
        { err, devices: others },
        "could not delete the bot user's old devices (delete them by hand)",
      );
    }
    logger.info(
      { deviceId: client.deviceId, crossSigned: result.crossSigned, restoredKeys: result.restored },
      "recovered the bot on a new device",
    );
    return {
      userId: client.userId,
      deviceId: client.deviceId,
      crossSigned: result.crossSigned,
      restoredKeys: result.restored,
      deletedDevices,
    };
  } catch (e) {
    // The new device did not get the identity (a wrong key...): it goes, so a next try starts clean.
    if (created !== undefined) {
      await appservice.deleteDevices(config.user, [created.deviceId]).catch(() => undefined);
    }
    throw e;
  } finally {
    await appservice.close().catch(() => undefined);
    if (created !== undefined) await rm(paths.dir, { recursive: true, force: true });
  }
}

/**
 * Starts an appservice bot over: deletes the bot user's devices on the server (MSC4190: no
 * password), deletes the data directory, and leaves a marker so the next start makes a new
 * cross-signing identity and recovery key (others see the identity change and verify it again).
 */
export async function resetAppserviceBot(
  dir: string,
  config: BotConfig,
  dataDir: string,
  logger: Logger,
): Promise<{ deletedDevices: string[] }> {
  // In memory: the users of the data directory are not brought back (their keys may be gone).
  const { appservice } = await appserviceFor(dir, config, undefined, logger);
  let deletedDevices: string[] = [];
  try {
    await appservice.start();
    const devices = await appservice.listDevices(config.user);
    await appservice.deleteDevices(config.user, devices);
    deletedDevices = devices;
  } finally {
    await appservice.close().catch(() => undefined);
  }
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFile(join(dataDir, RESET_MARKER_FILE), `${config.user}\n`, { mode: 0o600 });
  return { deletedDevices };
}
