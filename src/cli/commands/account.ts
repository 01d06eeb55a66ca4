// login, register, whoami.
import { jsonLine } from "../output.ts";
import { publicProfile } from "../profile.ts";
import { type LoginArgs, loginToProfile, openSession } from "../session.ts";
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
