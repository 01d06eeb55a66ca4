// identity status | identity bootstrap | trust USER: our cross-signing identity and how far we
// trust another user's devices. The JSON shapes are a contract (issue 11): scripts rely on them.
import type { Command } from "commander";
import type { MatrixClient } from "../../index.ts";
import { CliError } from "../errors.ts";
import { jsonLine } from "../output.ts";
import { withEncryptedClient } from "../session.ts";
import type { CommandIo } from "./io.ts";
import { uiaAuthOf } from "./uia.ts";

/** The `identity status` / `identity bootstrap` line. */
async function identityLine(client: MatrixClient): Promise<string> {
  const status = await client.getCrossSigningStatus();
  return jsonLine({
    user_id: client.userId,
    master_key: status.masterKey ?? null,
    cross_signed: status.deviceCrossSigned,
    verified: status.verified,
  });
}

/** `keyroom identity status`. */
export async function identityStatusCommand(args: { profileDir: string }, io: CommandIo): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client) => {
    // This command does not sync: what another device changed is asked for, not taken from the cache.
    await client.crypto.refreshUserKeys([client.userId]);
    io.out(await identityLine(client));
  });
}

/** `keyroom identity bootstrap [--password P]`: creates and uploads cross-signing keys if needed. */
export async function identityBootstrapCommand(
  args: { profileDir: string; password: string | undefined },
  io: CommandIo,
): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client) => {
    await client.bootstrapCrossSigning({ auth: uiaAuthOf(io, args.password) });
    io.out(await identityLine(client));
  });
}

/** `keyroom trust USER`: one line per device, then one for the user's identity. */
export async function trustCommand(
  args: { profileDir: string; userId: string },
  io: CommandIo,
): Promise<void> {
  if (!args.userId.startsWith("@") || !args.userId.includes(":")) {
    throw new CliError("USAGE", "USER must be a full user ID (@user:server)");
  }
  await withEncryptedClient(args.profileDir, async (client) => {
    const userId = args.userId;
    // Not synced (no device_lists changes seen): the user's keys are asked for again, so a
    // cross-signing identity made or changed since the profile last synced shows.
    await client.crypto.refreshUserKeys([userId]);
    if (userId === client.userId) {
      const status = await client.getCrossSigningStatus();
      io.out(
        jsonLine({
          user_id: userId,
          device_id: client.deviceId,
          ed25519: client.getFingerprint(),
          cross_signed: status.deviceCrossSigned,
          verified: status.verified,
          local: "verified",
        }),
      );
    }
    for (const d of await client.getUserDevices(userId)) {
      io.out(
        jsonLine({
          user_id: d.userId,
          device_id: d.deviceId,
          ed25519: d.ed25519,
          cross_signed: d.crossSigned,
          verified: d.verified,
          local: d.trust,
        }),
      );
    }
    const identity = await client.getUserIdentity(userId);
    io.out(
      jsonLine({
        user_id: userId,
        master_key: identity?.masterKey ?? null,
        verified: identity?.verified ?? false,
        changed: identity?.changed ?? false,
      }),
    );
  });
}

/** Adds `identity status`, `identity bootstrap` and `trust` to the program. */
export function registerIdentityCommands(
  program: Command,
  withProfile: (cmd: Command) => Command,
  profileOf: (opts: { profile?: string }) => string,
  optionalPassword: (option: string | undefined) => string | undefined,
  io: CommandIo,
): void {
  const identity = program.command("identity").description("this account's cross-signing identity");
  withProfile(
    identity
      .command("status")
      .description("print our identity as a JSON line: user_id, master_key, cross_signed, verified"),
  ).action(async (o: { profile?: string }) => identityStatusCommand({ profileDir: profileOf(o) }, io));
  withProfile(
    identity
      .command("bootstrap")
      .description("create and upload cross-signing keys (if the account has none) and sign this device")
      .option("--password <password>", "account password, if the server asks (or set $KEYROOM_PASSWORD)"),
  ).action(async (o: { password?: string; profile?: string }) =>
    identityBootstrapCommand({ profileDir: profileOf(o), password: optionalPassword(o.password) }, io),
  );
  withProfile(
    program
      .command("trust")
      .description("print a user's devices (cross_signed, verified, local trust) and identity as JSON lines")
      .argument("<user>", "full user ID"),
  ).action(async (userId: string, o: { profile?: string }) =>
    trustCommand({ profileDir: profileOf(o), userId }, io),
  );
}
