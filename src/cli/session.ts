// Turning a profile into a logged-in client, and logging in (or registering) into a profile.
import { join } from "node:path";
import {
  type ClientStore,
  FileClientStore,
  MatrixClient,
  type MatrixClientOptions,
  MemoryClientStore,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
} from "../index.ts";
import { CliError } from "./errors.ts";
import { accountStoreDir, type Profile, readProfile, requireProfile, writeProfile } from "./profile.ts";

/** The client store's file inside an account's store directory. */
export const CLIENT_STORE_FILE = "client.json";
/** The crypto store's directory inside an account's store directory. */
export const CRYPTO_STORE_DIR = "crypto";

type ExtraOptions = Pick<
  MatrixClientOptions,
  "syncTimeoutMs" | "syncFilter" | "fillTimelineGaps" | "logger" | "fetch" | "signal"
>;

/**
 * A catch-up sync that only brings the profile up to date (its to-device messages, room keys,
 * device lists and room state, and the sync position): a small timeline per room, no gap filled.
 */
export const CATCH_UP_SYNC: ExtraOptions = {
  syncFilter: { room: { timeline: { limit: 1 } } },
  fillTimelineGaps: false,
};

/**
 * How much of the profile a command opens:
 * - `plain`: only the session; no store is touched (commands that neither sync nor encrypt start
 *   faster without them);
 * - `full`: the client store (sync position, rooms) and, for profiles with encryption, the crypto
 *   store, which processes share (a `tail` and `send`s at once) by taking turns on its lease;
 * - `peek`: as `full`, but what its syncs bring stays in memory: the profile's sync position and
 *   rooms are left as they were, so the next `tail` still prints every message after them. The
 *   crypto store still saves what the engine took from them (room keys): `tail`'s sync then gets
 *   the same to-device messages again, which the engine knows as `REPLAYED`.
 */
export type SessionMode = "plain" | "full" | "peek";

/**
 * The profile's client store, read as it is, with saves of sync results dropped (`peek`): the
 * session is still read and written through to the file.
 */
class UnsavedSyncStore implements ClientStore {
  readonly #file: FileClientStore;

  constructor(file: FileClientStore) {
    this.#file = file;
  }

  loadSession(): Promise<StoredSession | undefined> {
    return this.#file.loadSession();
  }
  saveSession(session: StoredSession): Promise<void> {
    return this.#file.saveSession(session);
  }
  loadSync(): Promise<SyncSnapshot | undefined> {
    return this.#file.loadSync();
  }
  saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    return this.#file.saveSessionIf(session, expected);
  }
  clearIf(ours: (stored: StoredSession | undefined) => boolean): Promise<boolean> {
    return this.#file.clearIf(ours);
  }
  async saveSync(_changes: SyncChanges): Promise<void> {}
  clear(): Promise<void> {
    return this.#file.clear();
  }
  close(): Promise<void> {
    return this.#file.close();
  }
}

/** A client for the profile (not yet restored). */
export function clientForProfile(
  profile: Profile,
  mode: SessionMode,
  extra: ExtraOptions = {},
): MatrixClient {
  if (mode === "plain") {
    return new MatrixClient({
      ...extra,
      homeserverUrl: profile.homeserverUrl,
      store: new MemoryClientStore(),
    });
  }
  const file = new FileClientStore(join(profile.storeDir, CLIENT_STORE_FILE));
  return new MatrixClient({
    ...extra,
    homeserverUrl: profile.homeserverUrl,
    store: mode === "peek" ? new UnsavedSyncStore(file) : file,
    ...(profile.encryption
      ? { encryption: { store: { directory: join(profile.storeDir, CRYPTO_STORE_DIR) } } }
      : {}),
  });
}

/** Resumes the profile's session (same device, no login). Close the client when done. */
export async function restoreProfile(
  profile: Profile,
  mode: SessionMode,
  extra: ExtraOptions = {},
): Promise<MatrixClient> {
  const client = clientForProfile(profile, mode, extra);
  try {
    await client.restore({
      homeserverUrl: profile.homeserverUrl,
      userId: profile.userId,
      deviceId: profile.deviceId,
      accessToken: profile.accessToken,
    });
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

/** Reads the profile in `profileDir` and resumes its session. */
export async function openSession(
  profileDir: string,
  mode: SessionMode,
  extra: ExtraOptions = {},
): Promise<{ profile: Profile; client: MatrixClient }> {
  const profile = await requireProfile(profileDir);
  return { profile, client: await restoreProfile(profile, mode, extra) };
}

/** Runs `fn` with the profile's client, refusing profiles that have encryption turned off. */
export async function withEncryptedClient<T>(
  profileDir: string,
  fn: (client: MatrixClient) => Promise<T>,
): Promise<T> {
  const { client } = await openSession(profileDir, "full");
  try {
    if (!client.isEncryptionEnabled) {
      throw new CliError(
        "USAGE",
        "this profile has encryption turned off (log in again without --no-encryption)",
      );
    }
    return await fn(client);
  } finally {
    await client.close();
  }
}

export interface LoginArgs {
  profileDir: string;
  homeserver: string;
  /** Full user ID or localpart; for `register`, the localpart to create. */
  user: string;
  password: string;
  deviceId?: string;
  /** Register the account first (servers with open registration). */
  register?: boolean;
  /** End-to-end encryption for this profile (default true). */
  encryption?: boolean;
}

/** Whether `user` (full ID or localpart) names the profile's user. */
function sameUser(profileUserId: string, user: string): boolean {
  if (user.startsWith("@")) return user === profileUserId;
  return profileUserId.startsWith(`@${user}:`);
}

/**
 * Logs in (or registers), saves the profile and opens the account's stores once, so encryption
 * keys are uploaded and the sync position is set: `tail` then shows what arrives after the login.
 * An existing profile of the same user and homeserver keeps its device.
 */
export async function loginToProfile(args: LoginArgs): Promise<Profile> {
  // A corrupt profile is simply replaced by the new login.
  const previous = await readProfile(args.profileDir).catch(() => undefined);
  // No refresh tokens: every command resumes the profile's one access token (several at once, a
  // `tail` beside a `send`), which a refresh would replace in one process's store only.
  const login = new MatrixClient({
    homeserverUrl: args.homeserver,
    store: new MemoryClientStore(),
    refreshTokens: false,
  });
  const reuse =
    previous !== undefined &&
    previous.homeserverUrl === login.homeserverUrl &&
    sameUser(previous.userId, args.user)
      ? previous.deviceId
      : undefined;
  const deviceId = args.deviceId ?? reuse;
  const common = { password: args.password, ...(deviceId !== undefined ? { deviceId } : {}) };
  if (args.register) await login.register({ username: args.user, ...common });
  else await login.login({ user: args.user, ...common });
  const session = await login.store.loadSession();
  // Only the session is needed from this client; it holds no other state.
  await login.close();
  if (session === undefined) throw new CliError("PROFILE_WRITE", "the login returned no session");
  const profile: Profile = {
    version: 1,
    homeserverUrl: session.homeserverUrl,
    userId: session.userId,
    deviceId: session.deviceId,
    accessToken: session.accessToken,
    storeDir: accountStoreDir(args.profileDir, session.userId, session.deviceId),
    encryption: args.encryption ?? true,
  };
  // Saved first: if what follows fails, the next login still finds (and reuses) this device.
  await writeProfile(args.profileDir, profile);
  // Only a small timeline per room: this sync sets the position, it shows nothing.
  const client = await restoreProfile(profile, "full", CATCH_UP_SYNC);
  try {
    if (client.nextBatch === undefined) await client.syncOnce({ timeoutMs: 0 });
  } finally {
    await client.close();
  }
  return profile;
}
