// Moving an appservice bot to a new machine with its recovery key, and starting one over.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type MatrixClient, silentLogger } from "../../index.ts";
import { BotStartError } from "../session.ts";
import {
  type AppserviceBotDir,
  appserviceFor,
  BOT_DEVICE_NAME,
  botUserPaths,
  localDevice,
  RESET_MARKER_FILE,
} from "./directory.ts";

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
 * transactions for the next start. Refuses (`DEVICE_PRESENT`) when the data directory still has
 * the bot's device and stores: that bot only needs starting.
 */
export async function recoverAppserviceBot(
  o: AppserviceBotDir & { recoveryKey: string; hints?: { run: string } },
): Promise<RecoveredAppserviceBot> {
  const { dir, config, dataDir } = o;
  const logger = o.logger ?? silentLogger;
  const paths = botUserPaths(dataDir, config.user);
  const local = localDevice(dataDir, config.user);
  if (local === "complete") {
    throw new BotStartError(
      "DEVICE_PRESENT",
      `${dataDir} still has the bot's device and stores: run it (${o.hints?.run ?? "openAppserviceBot"})`,
    );
  }
  // A device whose keys are gone: its session goes (the server's device goes with the others below).
  if (local === "no_store") await rm(paths.dir, { recursive: true, force: true });
  const { appservice } = await appserviceFor(dir, config, dataDir, logger);
  let created: MatrixClient | undefined;
  try {
    await appservice.start();
    const client = await appservice.user(config.user, { displayName: BOT_DEVICE_NAME });
    created = client;
    const result = await client.crypto.recovery.recover({ recoveryKey: o.recoveryKey });
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
    // Looked up again: an earlier version's directory removed above, the new device has its own.
    if (created !== undefined)
      await rm(botUserPaths(dataDir, config.user).dir, { recursive: true, force: true });
  }
}

/**
 * Starts an appservice bot over: deletes the bot user's devices on the server (MSC4190: no
 * password), deletes the data directory, and leaves a marker so the next start makes a new
 * cross-signing identity and recovery key (others see the identity change and verify it again).
 */
export async function resetAppserviceBot(o: AppserviceBotDir): Promise<{ deletedDevices: string[] }> {
  const { dir, config, dataDir } = o;
  // In memory: the users of the data directory are not brought back (their keys may be gone).
  const { appservice } = await appserviceFor(dir, config, undefined, o.logger ?? silentLogger);
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
