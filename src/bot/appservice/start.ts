// Starting an appservice bot: the transactions endpoint, the bot user's client, and on the first
// start its recovery set-up, the way `openBotClient` sets up a bot with its own account.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Appservice } from "../../appservice/index.ts";
import { type Logger, type MatrixClient, silentLogger } from "../../index.ts";
import { BotStartError } from "../session.ts";
import {
  type AppserviceBotDir,
  appserviceFor,
  BOT_DEVICE_NAME,
  botUserPaths,
  listenPort,
  localDevice,
  RESET_MARKER_FILE,
} from "./directory.ts";

/** How the refusals name the ways out (the CLI: `keyroom bot recover DIR`, `keyroom bot reset DIR`). */
export interface AppserviceBotHints {
  recover: string;
  reset: string;
}

const LIBRARY_HINTS: AppserviceBotHints = {
  recover: "recoverAppserviceBot with the recovery key",
  reset: "resetAppserviceBot",
};

export interface OpenedAppserviceBot {
  /** The bot user's client, fed by the transactions endpoint (give it to `new Bot({ client })`). */
  client: MatrixClient;
  /** Started, not listening yet (see `listen`); close it when the bot stops. */
  appservice: Appservice;
  /**
   * Starts the transactions endpoint on the directory's port. Call it once the bot's handlers are
   * on `client` (after `bot.start()`): the room events a tool held while the bot was stopped are
   * handled first, the transactions that waited arrive at once, and an event fed before its
   * handler is there is not answered. `holdRoomEvents`: a tool's run while the bot is stopped
   * (`keyroom bot verify`), see `ListenOptions.holdRoomEvents`.
   */
  listen(options?: { holdRoomEvents?: boolean }): Promise<void>;
  /** This start set up recovery: the key to show the operator once (never stored, never logged). */
  recoveryKey?: string;
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
  o: AppserviceBotDir & { hints?: AppserviceBotHints },
): Promise<OpenedAppserviceBot> {
  const { dir, config, dataDir } = o;
  const logger = o.logger ?? silentLogger;
  const hints = o.hints ?? LIBRARY_HINTS;
  const local = localDevice(dataDir, config.user);
  if (local === "no_store") {
    const paths = botUserPaths(dataDir, config.user);
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
    await appservice.start();
    const client = await appservice.user(config.user, { displayName: BOT_DEVICE_NAME });
    const recoveryKey = await setUpRecovery(client, local === "none", reset, logger);
    if (reset) await rm(markerFile, { force: true });
    const port = listenPort(dir, settings, registration);
    const listen = async (options: { holdRoomEvents?: boolean } = {}) => {
      await appservice.listen({
        port,
        ...(settings.host !== undefined ? { host: settings.host } : {}),
        ...(options.holdRoomEvents === true ? { holdRoomEvents: true } : {}),
      });
    };
    return { client, appservice, listen, ...(recoveryKey !== undefined ? { recoveryKey } : {}) };
  } catch (e) {
    await appservice.close().catch(() => undefined);
    throw e;
  }
}

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
