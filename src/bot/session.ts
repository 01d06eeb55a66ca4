// A bot's session on disk and how it starts. The first start logs in (or registers), which opens
// the crypto store and uploads the device keys, then bootstraps cross-signing so the bot's device
// is signed by its own identity. Every later start resumes the same session, device and stores.
// A start that finds a device without its encryption store, or stores of another account, stops
// with a message saying how to recover or reset: it never logs in again behind the operator's back,
// because a new device is one nobody has verified and that cannot read the rooms' history.
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  ClientError,
  type ClientStore,
  type Logger,
  MatrixClient,
  type MatrixClientOptions,
  MatrixError,
  MemoryClientStore,
  type ShareWith,
  SqliteClientStore,
  StoreMismatchError,
  silentLogger,
} from "../index.ts";

/** The client store (session, sync position, rooms) inside the data directory. */
export const CLIENT_STORE_FILE = "client.sqlite3";
/** The crypto store's directory and file inside the data directory. */
export const CRYPTO_STORE_DIR = "crypto";
export const CRYPTO_STORE_FILE = "crypto.sqlite3";
/** Handled events and local data. */
export const LOCAL_STORE_FILE = "bot.sqlite3";

export type BotStartErrorCode =
  /** A session (device) is here but its encryption store is gone. */
  | "NO_STORE"
  /** The session or the stores here belong to another account or homeserver. */
  | "OTHER_ACCOUNT"
  /** The first start (or a lost session) needs the account's password. */
  | "PASSWORD_REQUIRED"
  /**
   * No device here, but the account has a cross-signing identity (an appservice bot's data
   * directory lost or not moved): recover with the recovery key, or reset.
   */
  | "RECOVERY_REQUIRED"
  /** Recovery was asked for, but the bot's device and stores are here: start the bot instead. */
  | "DEVICE_PRESENT"
  /** `keepSyncPosition` asks to resume the bot's device, and there is none here yet. */
  | "NOT_STARTED";

export class BotStartError extends Error {
  override readonly name = "BotStartError";
  constructor(
    readonly code: BotStartErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface BotAccountOptions {
  /** Where the session and stores live (created, mode 0700). */
  dataDir: string;
  homeserverUrl: string;
  /** The bot's user ID (a localpart is enough on the first start: the server completes it). */
  userId: string;
  /** Needed on the first start (login, cross-signing, recovery) and to recover only. */
  password?: string;
  /**
   * The recovery key `bot init` printed: with the password, a data directory without a session or
   * store (a new machine, a lost disk) logs in a new device and recovers the bot's identity and
   * room keys with it, instead of refusing.
   */
  recoveryKey?: string;
  /** Try to register the account first (servers with open registration), else log in. */
  register?: boolean;
  deviceDisplayName?: string;
  shareWith?: ShareWith;
  logger?: Logger;
  /** Further client options (sync timeout, fetch, ...). */
  client?: Omit<MatrixClientOptions, "homeserverUrl" | "store" | "encryption" | "logger">;
  /**
   * How to print the reset advice: the command that wipes this bot's data and starts anew
   * (default: the library call).
   */
  resetHint?: string;
  /** How to print the recovery advice (the command that recovers with the key). */
  recoverHint?: string;
  /**
   * Leave the bot's saved sync position and rooms as they are: this client resumes the bot's
   * device but syncs on from a copy in memory. For a short task beside a stopped bot (`keyroom
   * bot verify`): the events that arrive meanwhile are still new to the bot at its next start,
   * which handles them. The to-device messages of that range may come to it again, as after a
   * crash; the engine drops what it already handled.
   */
  keepSyncPosition?: boolean;
}

export interface OpenedBotClient {
  client: MatrixClient;
  /** This start logged in (a new device); later starts resume it. */
  firstStart: boolean;
  /** First start only: the recovery key, to show the operator once (Keyroom never stores it). */
  recoveryKey?: string;
  /** The start recovered the bot on a new device with `recoveryKey`. */
  recovered?: { crossSigned: boolean; restoredKeys: number };
}

export function botPaths(dataDir: string) {
  return {
    clientStore: join(dataDir, CLIENT_STORE_FILE),
    cryptoDir: join(dataDir, CRYPTO_STORE_DIR),
    cryptoStore: join(dataDir, CRYPTO_STORE_DIR, CRYPTO_STORE_FILE),
    localStore: join(dataDir, LOCAL_STORE_FILE),
  };
}

function localpartOf(user: string): string {
  return user.startsWith("@") ? user.slice(1, user.indexOf(":")) : user;
}

/** Whether `given` (full ID or localpart) names `userId`. */
function sameUser(userId: string, given: string): boolean {
  return given.startsWith("@") ? given === userId : userId.startsWith(`@${given}:`);
}

/** Opens (or on the first start creates) the bot's logged-in, encrypted client. */
export async function openBotClient(o: BotAccountOptions): Promise<OpenedBotClient> {
  const logger = o.logger ?? silentLogger;
  const paths = botPaths(o.dataDir);
  const reset = o.resetHint ?? `resetBot("${o.dataDir}")`;
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const saved = await SqliteClientStore.open(paths.clientStore);
  const store = o.keepSyncPosition === true ? await copyInMemory(saved) : saved;
  const hasStore = existsSync(paths.cryptoStore);
  const client = new MatrixClient({
    ...o.client,
    homeserverUrl: o.homeserverUrl,
    store,
    logger,
    encryption: {
      store: { directory: paths.cryptoDir, fileName: CRYPTO_STORE_FILE },
      // A store without a session (the session file was lost) keeps its device: log in to it again.
      // Only then: the look-up needs a full user ID, and a first start may name a localpart.
      restoreDeviceId: hasStore,
      ...(o.shareWith !== undefined ? { shareWith: o.shareWith } : {}),
    },
  });
  try {
    const session = await store.loadSession();
    if (session === undefined && o.keepSyncPosition === true) {
      // A login here would keep its session in memory only: a device nobody could use again.
      throw new BotStartError(
        "NOT_STARTED",
        `${o.dataDir} has no session of ${o.userId} to resume: start the bot once first`,
      );
    }
    if (session !== undefined) {
      if (!sameUser(session.userId, o.userId) || session.homeserverUrl !== client.homeserverUrl) {
        throw new BotStartError(
          "OTHER_ACCOUNT",
          `${o.dataDir} holds the session of ${session.userId} on ${session.homeserverUrl}, not ${o.userId} on ` +
            `${client.homeserverUrl}. Point the config at that account, or start this one in another data directory ` +
            `(or wipe this one: ${reset}).`,
        );
      }
      if (!hasStore) {
        if (o.recoveryKey !== undefined && o.password !== undefined) {
          // The keyless device is of no use: log it out (best effort), then recover on a new one.
          await client.close();
          await resetBot(o.dataDir, logger);
          return openBotClient(o);
        }
        throw new BotStartError(
          "NO_STORE",
          `${o.dataDir} has device ${session.deviceId} of ${session.userId}, but its encryption store ` +
            `(${paths.cryptoStore}) is missing, so the device's keys are gone. Recover with the recovery key ` +
            `that the first start printed (${o.recoverHint ?? "openBotClient with recoveryKey and password"}: a new ` +
            "device gets the bot's identity, room keys and state back), restore the data directory from a backup, " +
            `or reset (${reset}: logs that device out; the next start makes a new identity, verified again).`,
        );
      }
      try {
        await client.restore(session);
      } catch (e) {
        if (e instanceof StoreMismatchError) throw otherStore(e, o.dataDir, reset);
        throw e;
      }
      logger.info({ userId: session.userId, deviceId: session.deviceId }, "resumed the bot's device");
      await warnWithoutCrossSigning(client, logger);
      return { client, firstStart: false };
    }
    if (o.password === undefined) {
      throw new BotStartError(
        "PASSWORD_REQUIRED",
        hasStore
          ? `${o.dataDir} has an encryption store but no session: give the password to log its device in again`
          : `the first start of ${o.userId} needs its password (to log in and set up cross-signing)`,
      );
    }
    if (hasStore) {
      await loginOrRegister(client, { ...o, register: false });
      logger.info({ deviceId: client.deviceId }, "logged the stored device in again");
      return { client, firstStart: false };
    }
    if (o.recoveryKey !== undefined) {
      await client.login({ user: o.userId, password: o.password, ...displayName(o) });
      const result = await client.crypto.recovery.recover({ recoveryKey: o.recoveryKey });
      logger.info(
        { deviceId: client.deviceId, crossSigned: result.crossSigned, restoredKeys: result.restored },
        "recovered the bot on a new device",
      );
      return {
        client,
        firstStart: false,
        recovered: { crossSigned: result.crossSigned, restoredKeys: result.restored },
      };
    }
    await loginOrRegister(client, o);
    // Cross-signing, key backup and secret storage behind one recovery key.
    const { recoveryKey } = await client.crypto.recovery.enable({ auth: { password: o.password } });
    const status = await client.getCrossSigningStatus();
    logger.info({ deviceCrossSigned: status.deviceCrossSigned }, "cross-signing and recovery set up");
    return { client, firstStart: true, recoveryKey };
  } catch (e) {
    await client.close().catch(() => undefined);
    if (e instanceof StoreMismatchError) throw otherStore(e, o.dataDir, reset);
    throw e;
  }
}

/**
 * `saved` with its sync position, rooms and account data copied into memory, where the syncs of
 * this client go; the session stays `saved`'s (read and written there): tokens renewed meanwhile
 * (refresh tokens) spend the stored refresh token, so the bot's next start needs the new ones.
 * Forgetting the session (a logout) forgets only the copy: the bot's next start meets the server's
 * answer to its stored token. Closing closes `saved`.
 */
async function copyInMemory(saved: SqliteClientStore): Promise<ClientStore> {
  const copy = new MemoryClientStore();
  try {
    const sync = await saved.loadSync();
    if (sync !== undefined) await copy.saveSync(sync);
  } catch (e) {
    await saved.close();
    throw e;
  }
  return {
    loadSession: () => saved.loadSession(),
    saveSession: (session) => saved.saveSession(session),
    saveSessionIf: (session, expected) => saved.saveSessionIf(session, expected),
    loadSync: () => copy.loadSync(),
    saveSync: (changes) => copy.saveSync(changes),
    clear: () => copy.clear(),
    clearIf: async (ours) => {
      if (!ours(await saved.loadSession())) return false;
      await copy.clear();
      return true;
    },
    close: () => saved.close(),
  };
}

function otherStore(e: StoreMismatchError, dataDir: string, reset: string): BotStartError {
  return new BotStartError(
    "OTHER_ACCOUNT",
    `the encryption store in ${dataDir} belongs to ${e.stored.userId} (device ${e.stored.deviceId}), not ` +
      `${e.requested.userId}${e.requested.deviceId ? ` (device ${e.requested.deviceId})` : ""}. Use the data directory ` +
      `that belongs to this account, or reset: ${reset}.`,
  );
}

function displayName(o: BotAccountOptions): { deviceDisplayName?: string } {
  return o.deviceDisplayName !== undefined ? { deviceDisplayName: o.deviceDisplayName } : {};
}

async function loginOrRegister(client: MatrixClient, o: BotAccountOptions): Promise<void> {
  const password = o.password ?? "";
  const device = displayName(o);
  if (o.register) {
    try {
      await client.register({ username: localpartOf(o.userId), password, ...device });
      return;
    } catch (e) {
      // Taken (maybe by an earlier run) or registration closed: the account may exist, log in.
      const closed =
        (e instanceof MatrixError &&
          ["M_USER_IN_USE", "M_FORBIDDEN", "M_UNRECOGNIZED"].includes(e.errcode)) ||
        (e instanceof MatrixError && (e.httpStatus === 403 || e.httpStatus === 404)) ||
        (e instanceof ClientError && e.code === "UNSUPPORTED_AUTH");
      if (!closed) throw e;
    }
  }
  await client.login({ user: o.userId, password, ...device });
}

async function warnWithoutCrossSigning(client: MatrixClient, logger: Logger): Promise<void> {
  try {
    const status = await client.getCrossSigningStatus();
    if (status.masterKey === undefined) {
      logger.warn(
        {},
        "the bot has no cross-signing identity: others cannot verify it (set it up with its password)",
      );
    }
  } catch (err) {
    logger.warn({ err }, "could not read the cross-signing status");
  }
}

/**
 * Wipes a bot's data directory: logs its device out (the server deletes it and its keys) when the
 * session is still valid, then deletes the session and the stores. The next start is a first start.
 */
export async function resetBot(dataDir: string, logger: Logger = silentLogger): Promise<void> {
  const paths = botPaths(dataDir);
  if (existsSync(paths.clientStore)) {
    const store = await SqliteClientStore.open(paths.clientStore);
    const session = await store.loadSession();
    if (session !== undefined) {
      const client = new MatrixClient({ homeserverUrl: session.homeserverUrl, store, logger });
      try {
        await client.restore(session);
        await client.logout();
        logger.info({ deviceId: session.deviceId }, "logged the old device out");
      } catch (err) {
        logger.warn({ err }, "could not log the old device out (delete it from another client)");
      } finally {
        await client.close().catch(() => undefined);
      }
    } else await store.close();
  }
  await rm(dataDir, { recursive: true, force: true });
}
