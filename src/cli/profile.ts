// The profile: one directory holding `profile.json` (homeserver, user, device, access token, where
// the stores live) and those stores. The file holds the token, so it is written 0600 inside a
// 0700 directory, atomically (temporary file, fsync, rename), and validated when read back.
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import * as z from "../wire/zod.ts";
import { CliError } from "./errors.ts";

export const PROFILE_FILE = "profile.json";
/** The environment variable naming the profile directory when `--profile` is not given. */
export const PROFILE_ENV = "KEYROOM_PROFILE";

const profileSchema = z.object({
  version: z.literal(1),
  homeserverUrl: z.string().check(z.minLength(1)),
  userId: z.string().check(z.minLength(1)),
  deviceId: z.string().check(z.minLength(1)),
  accessToken: z.string().check(z.minLength(1)),
  /** Directory of this account's client store (sync state) and crypto store. */
  storeDir: z.string().check(z.minLength(1)),
  encryption: z.boolean(),
});

export type Profile = z.infer<typeof profileSchema>;
/** A profile without its access token: the only form that is ever printed. */
export type PublicProfile = Omit<Profile, "accessToken" | "version">;

/**
 * The profile directory: `--profile`, else `$KEYROOM_PROFILE`, else `$XDG_CONFIG_HOME/keyroom`
 * (`~/.config/keyroom` when unset). An empty `--profile` (`--profile "$UNSET"`) is a usage error:
 * falling back would act as, or log in over, another profile.
 */
export function resolveProfileDir(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (option === "") throw new CliError("USAGE", "--profile needs a directory, got an empty string");
  if (option !== undefined) return resolve(option);
  const fromEnv = env[PROFILE_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
  const config = env.XDG_CONFIG_HOME;
  const base = config !== undefined && config !== "" ? config : join(homedir(), ".config");
  return resolve(base, "keyroom");
}

/** Where an account's stores live: one directory per user and device, so logins never mix them. */
export function accountStoreDir(profileDir: string, userId: string, deviceId: string): string {
  return join(profileDir, "accounts", safeName(userId), safeName(deviceId));
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._=-]/g, "_");
}

export async function readProfile(dir: string): Promise<Profile | undefined> {
  const file = join(dir, PROFILE_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CliError("PROFILE_CORRUPT", `cannot read profile ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError("PROFILE_CORRUPT", `profile ${file} is not JSON`);
  }
  const parsed = profileSchema.safeParse(json);
  if (!parsed.success) throw new CliError("PROFILE_CORRUPT", `profile ${file} failed validation`);
  return parsed.data;
}

export async function requireProfile(dir: string): Promise<Profile> {
  const profile = await readProfile(dir);
  if (profile === undefined) {
    throw new CliError("NO_PROFILE", `no profile in ${dir}; run "keyroom login" or "keyroom register" first`);
  }
  return profile;
}

export async function writeProfile(dir: string, profile: Profile): Promise<void> {
  const file = join(dir, PROFILE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // A new file only ("wx": a leftover or a planted link is removed, never written through), private
    // before the token goes in.
    await rm(tmp, { force: true });
    const handle = await open(tmp, "wx", 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(`${JSON.stringify(profileSchema.parse(profile), null, 2)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    // Best effort: the directory itself may be what failed.
    await rm(tmp, { force: true }).catch(() => {});
    throw new CliError("PROFILE_WRITE", `cannot write profile ${file}: ${(err as Error).message}`);
  }
}

/** Deletes `profile.json`, and with `purgeStores` the account's store directory. */
export async function removeProfile(dir: string, profile: Profile, purgeStores: boolean): Promise<void> {
  await rm(join(dir, PROFILE_FILE), { force: true });
  if (purgeStores) await rm(profile.storeDir, { recursive: true, force: true });
}

export function publicProfile(p: Profile): PublicProfile {
  return {
    homeserverUrl: p.homeserverUrl,
    userId: p.userId,
    deviceId: p.deviceId,
    storeDir: p.storeDir,
    encryption: p.encryption,
  };
}
