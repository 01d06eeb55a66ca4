// login, register, whoami, logout.
import { jsonLine } from "../output.ts";
import { publicProfile, removeProfile, requireProfile } from "../profile.ts";
import { type LoginArgs, loginToProfile, openSession, restoreProfile } from "../session.ts";
import type { CommandIo } from "./io.ts";

/** `keyroom login` / `keyroom register`: prints the saved profile (never its token). */
export async function loginCommand(args: LoginArgs, io: CommandIo): Promise<void> {
  const profile = await loginToProfile(args);
  const p = publicProfile(profile);
  io.out(
    jsonLine({
      user_id: p.userId,
      device_id: p.deviceId,
      homeserver: p.homeserverUrl,
      encryption: p.encryption,
      profile: args.profileDir,
    }),
  );
}

/** `keyroom whoami`: asks the server who the profile's token belongs to. */
export async function whoamiCommand(args: { profileDir: string }, io: CommandIo): Promise<void> {
  const { profile, client } = await openSession(args.profileDir, "plain");
  try {
    const me = await client.whoami();
    io.out(
      jsonLine({
        user_id: me.user_id,
        device_id: me.device_id ?? profile.deviceId,
        homeserver: profile.homeserverUrl,
        encryption: profile.encryption,
      }),
    );
  } finally {
    await client.close();
  }
}

/**
 * `keyroom logout`: ends the session server-side (the device and its published keys are deleted)
 * and removes the profile. The account's stores stay (their Megolm keys still read old history)
 * unless `purge` is set.
 */
export async function logoutCommand(
  args: { profileDir: string; purge: boolean },
  io: CommandIo,
): Promise<void> {
  const profile = await requireProfile(args.profileDir);
  const client = await restoreProfile(profile, "plain");
  try {
    await client.logout();
  } finally {
    await client.close();
  }
  await removeProfile(args.profileDir, profile, args.purge);
  io.out(
    jsonLine({
      user_id: profile.userId,
      device_id: profile.deviceId,
      stores_kept: args.purge ? null : profile.storeDir,
    }),
  );
}
