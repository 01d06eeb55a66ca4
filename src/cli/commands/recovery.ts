// recovery enable | recover | status | reset | change-key: one recovery key (or passphrase) over
// secret storage, cross-signing and key backup. The JSON shapes are a contract (issue 12).
// Passphrases are read with `io.readSecret` (no echo on a terminal, a line of stdin otherwise);
// neither they nor the recovery key are ever logged (the key is printed once, on stdout).
import type { Command } from "commander";
import type { MatrixClient } from "../../index.ts";
import { CliError } from "../errors.ts";
import { jsonLine } from "../output.ts";
import { withEncryptedClient } from "../session.ts";
import type { CommandIo } from "./io.ts";
import { fractionBar, progressBar } from "./progress.ts";
import { uiaAuthOf } from "./uia.ts";

async function passphrase(io: CommandIo, confirm: boolean): Promise<string> {
  if (io.readSecret === undefined)
    throw new CliError("USAGE", "no terminal or stdin to read the passphrase from");
  const first = await io.readSecret("Passphrase: ");
  if (first === undefined || first === "") throw new CliError("USAGE", "no passphrase given");
  // Typed unseen at a terminal, a new passphrase is asked for twice, wherever stdout goes
  // (`recovery enable --passphrase > key.json` is typed at a terminal too).
  if (confirm && io.typed === true) {
    const again = await io.readSecret("Passphrase again: ");
    if (again !== first) throw new CliError("USAGE", "the passphrases differ");
  }
  return first;
}

/** A new passphrase's options for enable / change-key / reset. */
async function newKeyOptions(
  io: CommandIo,
  usePassphrase: boolean,
): Promise<{ passphrase?: string; onProgress?: (f: number) => void }> {
  if (!usePassphrase) return {};
  return {
    passphrase: await passphrase(io, true),
    ...(io.interactive === true ? { onProgress: fractionBar(io, "deriving the key") } : {}),
  };
}

const keyLine = (recoveryKey: string): string => jsonLine({ recovery_key: recoveryKey });

/** `keyroom recovery enable [--passphrase] [--password P]`: `{"recovery_key": "EsT…"}`, once. */
export async function recoveryEnableCommand(
  args: { profileDir: string; passphrase: boolean; password: string | undefined },
  io: CommandIo,
): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client) => {
    const options = await newKeyOptions(io, args.passphrase);
    const { recoveryKey } = await client.crypto.recovery.enable({
      ...options,
      auth: uiaAuthOf(io, args.password),
    });
    // The process ends next: the room keys held go up to the backup now, not in the background.
    await client.crypto.backup.uploadPending();
    io.out(keyLine(recoveryKey));
  });
}

/**
 * `keyroom recovery recover (--key KEY | --passphrase)`:
 * `{"cross_signed": true, "backup_version": "…", "restored": N}`.
 */
export async function recoveryRecoverCommand(
  args: { profileDir: string; key: string | undefined; passphrase: boolean },
  io: CommandIo,
): Promise<void> {
  if ((args.key === undefined) === !args.passphrase) {
    throw new CliError("USAGE", "give either --key KEY or --passphrase");
  }
  await withEncryptedClient(args.profileDir, async (client) => {
    const unlock =
      args.key !== undefined
        ? { recoveryKey: args.key }
        : {
            passphrase: await passphrase(io, false),
            ...(io.interactive === true ? { onProgress: fractionBar(io, "deriving the key") } : {}),
          };
    const restoreBar = progressBar(io, "restoring", "keys");
    const result = await client.crypto.recovery.recover(unlock, {
      ...(io.interactive === true ? { onRestoreProgress: restoreBar } : {}),
    });
    io.out(
      jsonLine({
        cross_signed: result.crossSigned,
        backup_version: result.backupVersion ?? null,
        restored: result.restored,
        ...(result.restoreDownload === "per_room"
          ? { download: result.restoreDownload, rooms_too_large: result.restoreRoomsTooLarge }
          : {}),
      }),
    );
  });
}

/** `keyroom recovery status`: `{"state": "disabled|enabled|incomplete", "missing": [...]}`. */
export async function recoveryStatusCommand(args: { profileDir: string }, io: CommandIo): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client) => {
    const status = await client.crypto.recovery.status();
    io.out(
      jsonLine({
        state: status.state,
        missing: status.missing.map((m) => ({ name: m.name, problem: m.problem, repair: m.repair })),
      }),
    );
  });
}

/** `keyroom recovery reset [--password P] [--passphrase]`: a new identity, backup and recovery key. */
export async function recoveryResetCommand(
  args: { profileDir: string; password: string | undefined; passphrase: boolean },
  io: CommandIo,
): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client: MatrixClient) => {
    const options = await newKeyOptions(io, args.passphrase);
    const { recoveryKey } = await client.crypto.recovery.resetIdentity({
      ...options,
      auth: uiaAuthOf(io, args.password),
    });
    await client.crypto.backup.uploadPending(); // the new version gets every key before we exit
    io.out(keyLine(recoveryKey));
  });
}

/** `keyroom recovery change-key [--passphrase]`: a new recovery key for the same secrets. */
export async function recoveryChangeKeyCommand(
  args: { profileDir: string; passphrase: boolean },
  io: CommandIo,
): Promise<void> {
  await withEncryptedClient(args.profileDir, async (client) => {
    const { recoveryKey } = await client.crypto.recovery.changeRecoveryKey(
      await newKeyOptions(io, args.passphrase),
    );
    await client.crypto.backup.uploadPending(); // a backup recreated on the way gets every key
    io.out(keyLine(recoveryKey));
  });
}

/** Adds the `recovery` commands to the program. */
export function registerRecoveryCommands(
  program: Command,
  withProfile: (cmd: Command) => Command,
  profileOf: (opts: { profile?: string }) => string,
  optionalPassword: (option: string | undefined) => string | undefined,
  io: CommandIo,
): void {
  const recovery = program
    .command("recovery")
    .description("one recovery key for secret storage, cross-signing and the key backup");
  const passphraseHelp = "use a passphrase (read without echo, or from stdin) instead of a random key";
  const passwordHelp = "account password, if the server asks (or set $KEYROOM_PASSWORD)";
  withProfile(
    recovery
      .command("enable")
      .description('set recovery up; prints {"recovery_key": "EsT…"} once: keep it safe')
      .option("--passphrase", passphraseHelp)
      .option("--password <password>", passwordHelp),
  ).action(async (o: { passphrase?: boolean; password?: string; profile?: string }) =>
    recoveryEnableCommand(
      { profileDir: profileOf(o), passphrase: o.passphrase === true, password: optionalPassword(o.password) },
      io,
    ),
  );
  withProfile(
    recovery
      .command("recover")
      .description("on a new device: take the secrets, get cross-signed, restore the key backup")
      .option("--key <key>", "the recovery key (EsT… …)")
      .option("--passphrase", "the recovery passphrase (read without echo, or from stdin)"),
  ).action(async (o: { key?: string; passphrase?: boolean; profile?: string }) =>
    recoveryRecoverCommand({ profileDir: profileOf(o), key: o.key, passphrase: o.passphrase === true }, io),
  );
  withProfile(
    recovery
      .command("status")
      .description(
        "print disabled / enabled / incomplete and, per missing piece, the command that repairs it",
      ),
  ).action(async (o: { profile?: string }) => recoveryStatusCommand({ profileDir: profileOf(o) }, io));
  withProfile(
    recovery
      .command("reset")
      .description(
        "new cross-signing identity, key backup and recovery key (when a secret is lost everywhere)",
      )
      .option("--password <password>", passwordHelp)
      .option("--passphrase", passphraseHelp),
  ).action(async (o: { password?: string; passphrase?: boolean; profile?: string }) =>
    recoveryResetCommand(
      { profileDir: profileOf(o), password: optionalPassword(o.password), passphrase: o.passphrase === true },
      io,
    ),
  );
  withProfile(
    recovery
      .command("change-key")
      .description("a new recovery key for the secrets this device holds")
      .option("--passphrase", passphraseHelp),
  ).action(async (o: { passphrase?: boolean; profile?: string }) =>
    recoveryChangeKeyCommand({ profileDir: profileOf(o), passphrase: o.passphrase === true }, io),
  );
}
