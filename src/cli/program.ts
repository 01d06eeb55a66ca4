// The `keyroom` command tree (commander) and the error-to-exit-status mapping. `main.ts` only adds
// signals and the process; tests drive `runCli` in-process for help and usage errors.
import { Command, CommanderError, Option } from "commander";
import { collect, parseHomeserver, parseInteger, parseSeconds, parseUserId } from "./args.ts";
import { loginCommand, logoutCommand, whoamiCommand } from "./commands/account.ts";
import { registerBackupCommands } from "./commands/backup.ts";
import { deleteDevicesCommand, listDevicesCommand, renameDeviceCommand } from "./commands/devices.ts";
import { registerIdentityCommands } from "./commands/identity.ts";
import type { CommandIo } from "./commands/io.ts";
import { registerRecoveryCommands } from "./commands/recovery.ts";
import {
  createRoomCommand,
  inviteCommand,
  joinCommand,
  leaveCommand,
  roomsCommand,
} from "./commands/rooms.ts";
import { sendCommand } from "./commands/send.ts";
import { tailCommand } from "./commands/tail.ts";
import { verifyListenCommand, verifyRequestCommand } from "./commands/verify.ts";
import { verifyQrScanCommand, verifyQrShowCommand } from "./commands/verify-qr.ts";
import { CliError } from "./errors.ts";
import { errorMessage } from "./output.ts";
import { resolveProfileDir } from "./profile.ts";

/** Exit status for bad usage (commander's own errors and CliError "USAGE"). */
export const EXIT_USAGE = 2;
/** Exit status for every other failure. */
export const EXIT_FAILURE = 1;

const PROFILE_HELP =
  "profile directory (default: $KEYROOM_PROFILE, else $XDG_CONFIG_HOME/keyroom or ~/.config/keyroom)";

/** Where `bot recover` reads the recovery key when `--recovery-key` is not given. */
export const RECOVERY_KEY_ENV = "KEYROOM_RECOVERY_KEY";

/** Where `login` / `register` read the password when `--password` is not given. */
export const PASSWORD_ENV = "KEYROOM_PASSWORD";

function passwordOf(option: string | undefined): string {
  const password = option ?? process.env[PASSWORD_ENV];
  if (password === undefined || password === "") {
    throw new CliError("USAGE", `give --password or set $${PASSWORD_ENV}`);
  }
  return password;
}

/**
 * The password from `--password` or `$KEYROOM_PASSWORD`, else asked for: typed without echo on a
 * terminal, or one line of stdin (`bot init`, whose contract makes `--password` optional).
 */
async function passwordOrAsk(option: string | undefined, io: CommandIo): Promise<string> {
  const given = option ?? process.env[PASSWORD_ENV];
  if (given !== undefined && given !== "") return given;
  const typed = await io.readSecret?.("Password: ");
  if (typed === undefined || typed === "") {
    throw new CliError("USAGE", `give --password, set $${PASSWORD_ENV}, or type the password on stdin`);
  }
  return typed;
}

export function buildProgram(io: CommandIo): Command {
  const program = new Command("keyroom")
    .description("Matrix from the shell: log in, list rooms, send and tail messages, run a dev homeserver.")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      // One line, as every failure (scripts read it): commander's suggestion joins the message.
      outputError: (s, write) =>
        write(
          `keyroom: ${s
            .replace(/^error: /, "")
            .trim()
            .split("\n")
            .join(" ")} (see --help)\n`,
        ),
    });
  const withProfile = (cmd: Command): Command => cmd.option("--profile <dir>", PROFILE_HELP);
  const profileOf = (opts: { profile?: string }): string => resolveProfileDir(opts.profile);

  const loginLike = (name: "login" | "register", description: string) =>
    withProfile(
      program
        .command(name)
        .description(description)
        .requiredOption("--homeserver <url>", "homeserver base URL", parseHomeserver)
        .requiredOption("--user <user>", name === "login" ? "user ID or localpart" : "localpart to register")
        .option(
          "--password <password>",
          `password (or set $${PASSWORD_ENV}, which other users cannot see in ps)`,
        )
        .option("--device-id <id>", "device ID to use (default: the profile's device for the same user)")
        .option("--no-encryption", "turn end-to-end encryption off for this profile"),
    ).action(
      async (o: {
        homeserver: string;
        user: string;
        password?: string;
        deviceId?: string;
        encryption: boolean;
        profile?: string;
      }) => {
        await loginCommand(
          {
            profileDir: profileOf(o),
            homeserver: o.homeserver,
            user: o.user,
            password: passwordOf(o.password),
            ...(o.deviceId !== undefined ? { deviceId: o.deviceId } : {}),
            register: name === "register",
            encryption: o.encryption,
          },
          io,
        );
      },
    );
  loginLike("login", "log in with a password and save the profile (reuses the profile's device)");
  loginLike("register", "register an account (servers with open registration), then log in");

  withProfile(
    program.command("whoami").description("print the profile's user and device as a JSON line"),
  ).action(async (o: { profile?: string }) => whoamiCommand({ profileDir: profileOf(o) }, io));

  withProfile(
    program
      .command("logout")
      .description("end the session (the server deletes the device) and remove the profile")
      .option("--purge", "also delete the account's stores (their keys could still read old history)", false),
  ).action(async (o: { purge: boolean; profile?: string }) =>
    logoutCommand({ profileDir: profileOf(o), purge: o.purge }, io),
  );

  const devices = program.command("devices").description("the account's own devices");
  withProfile(
    devices
      .command("list")
      .description("print each device as a JSON line: device_id, display_name, current, ed25519, trust"),
  ).action(async (o: { profile?: string }) => listDevicesCommand({ profileDir: profileOf(o) }, io));
  withProfile(
    devices
      .command("rename")
      .description("set a device's display name")
      .argument("<device>")
      .argument("<name>"),
  ).action(async (deviceId: string, name: string, o: { profile?: string }) =>
    renameDeviceCommand({ profileDir: profileOf(o), deviceId, name }),
  );
  withProfile(
    devices
      .command("delete")
      .description("delete devices (not this one: use logout); confirms with the account password")
      .argument("<device...>")
      .option("--password <password>", `account password (or set $${PASSWORD_ENV})`),
  ).action(async (deviceIds: string[], o: { password?: string; profile?: string }) =>
    deleteDevicesCommand({ profileDir: profileOf(o), deviceIds, password: passwordOf(o.password) }),
  );

  registerIdentityCommands(
    program,
    withProfile,
    profileOf,
    (option) => option ?? (process.env[PASSWORD_ENV] || undefined),
    io,
  );
  registerBackupCommands(program, withProfile, profileOf, io);
  registerRecoveryCommands(
    program,
    withProfile,
    profileOf,
    (option) => option ?? (process.env[PASSWORD_ENV] || undefined),
    io,
  );

  withProfile(
    program
      .command("rooms")
      .description("print each joined room as a JSON line: room_id, name, encrypted, members"),
  ).action(async (o: { profile?: string }) => roomsCommand({ profileDir: profileOf(o) }, io));

  withProfile(
    program
      .command("create-room")
      .description("create a room and print its ID alone")
      .option("--name <name>", "room name")
      .option("--encrypted", "turn on end-to-end encryption in the room", false)
      .option(
        "--invite <user>",
        "invite a user (repeatable)",
        (value: string, previous: string[]) => collect(parseUserId("--invite")(value), previous),
        [],
      ),
  ).action(async (o: { name?: string; encrypted: boolean; invite: string[]; profile?: string }) =>
    createRoomCommand(
      {
        profileDir: profileOf(o),
        ...(o.name !== undefined ? { name: o.name } : {}),
        encrypted: o.encrypted,
        invite: o.invite,
      },
      io,
    ),
  );

  withProfile(
    program.command("join").description("join a room by ID or alias; prints the room ID").argument("<room>"),
  ).action(async (room: string, o: { profile?: string }) =>
    joinCommand({ profileDir: profileOf(o), room }, io),
  );
  withProfile(
    program
      .command("invite")
      .description("invite a user to a room")
      .argument("<room>")
      .argument("<user>", "user ID", parseUserId("USER")),
  ).action(async (room: string, user: string, o: { profile?: string }) =>
    inviteCommand({ profileDir: profileOf(o), room, user }),
  );
  withProfile(program.command("leave").description("leave a room").argument("<room>")).action(
    async (room: string, o: { profile?: string }) => leaveCommand({ profileDir: profileOf(o), room }),
  );

  withProfile(
    program
      .command("send")
      .description("send a message (or a file) and print its event ID alone")
      .argument("<room>", "room ID or alias")
      .argument("[text]", "message text (HTML with --html)")
      .option("--notice", "send as m.notice (bots)", false)
      .option("--html", "TEXT is HTML; the plain body is derived from it", false)
      .option("--file <path>", "upload a file and send it (m.file / m.image / m.audio / m.video)"),
  ).action(
    async (
      room: string,
      text: string | undefined,
      o: { notice: boolean; html: boolean; file?: string; profile?: string },
    ) =>
      sendCommand(
        {
          profileDir: profileOf(o),
          room,
          ...(text !== undefined ? { text } : {}),
          notice: o.notice,
          html: o.html,
          ...(o.file !== undefined ? { file: o.file } : {}),
        },
        io,
      ),
  );

  const verify = program
    .command("verify")
    .description("interactive verification (SAS emoji): JSON lines, the answer read from stdin");
  withProfile(
    verify
      .command("request")
      .description("ask USER (to-device for our own devices, in a DM otherwise) to verify, then compare")
      .argument("<user>", "user ID", parseUserId("USER"))
      .argument("[device]", "one device (default: all of the user's devices)"),
  ).action(async (userId: string, deviceId: string | undefined, o: { profile?: string }) =>
    verifyRequestCommand(
      { profileDir: profileOf(o), userId, ...(deviceId !== undefined ? { deviceId } : {}) },
      io,
    ),
  );
  withProfile(
    verify
      .command("listen")
      .description("wait for one incoming verification request, accept it, then compare")
      .option(
        "--timeout <seconds>",
        "give up when no request came in this many seconds",
        parseSeconds("--timeout"),
      ),
  ).action(async (o: { timeout?: number; profile?: string }) =>
    verifyListenCommand(
      { profileDir: profileOf(o), ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}) },
      io,
    ),
  );

  const qr = verify.command("qr").description("verification by QR code (needs cross-signing on both sides)");
  withProfile(
    qr
      .command("show")
      .description("ask USER to verify and show our QR code (drawn on stderr, bytes as base64 on stdout)")
      .argument("<user>", "user ID", parseUserId("USER"))
      .argument("[device]", "one device (default: all of the user's devices)"),
  ).action(async (userId: string, deviceId: string | undefined, o: { profile?: string }) =>
    verifyQrShowCommand(
      { profileDir: profileOf(o), userId, ...(deviceId !== undefined ? { deviceId } : {}) },
      io,
    ),
  );
  withProfile(
    qr
      .command("scan")
      .description("scan a QR code (base64 bytes, or a .png file) and complete its verification")
      .argument("<code>", "the code's bytes in base64, or a PNG file")
      .option(
        "--timeout <seconds>",
        "give up when the code's request did not arrive in this many seconds",
        parseSeconds("--timeout"),
      ),
  ).action(async (code: string, o: { timeout?: number; profile?: string }) =>
    verifyQrScanCommand(
      { profileDir: profileOf(o), code, ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}) },
      io,
    ),
  );

  withProfile(
    program
      .command("tail")
      .description("sync and print each new message as a JSON line until --limit or --timeout (or Ctrl-C)")
      .argument("[room]", "only this room (ID or alias)")
      .option("--limit <n>", "stop after N messages", parseInteger("--limit", 1, 1_000_000))
      .option("--timeout <seconds>", "stop after this many seconds", parseSeconds("--timeout")),
  ).action(async (room: string | undefined, o: { limit?: number; timeout?: number; profile?: string }) =>
    tailCommand(
      {
        profileDir: profileOf(o),
        ...(room !== undefined ? { room } : {}),
        ...(o.limit !== undefined ? { limit: o.limit } : {}),
        ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}),
      },
      io,
    ),
  );

  const bot = program.command("bot").description("bots: write one, run it, verify it (docs/bots.md)");
  bot
    .command("init")
    .description(
      "write a runnable bot (echo skill) in DIR, registering the user where allowed, else logging in",
    )
    .argument("<dir>", "the bot's directory (created)")
    .requiredOption("--homeserver <url>", "homeserver base URL", parseHomeserver)
    .requiredOption("--user <user>", "the bot's localpart or user ID")
    .option("--password <password>", `password (or set $${PASSWORD_ENV}; else it is asked for)`)
    .option(
      "--owner <user>",
      "an owner of the bot (repeatable); invitations are accepted from owners",
      collect,
      [],
    )
    .option(
      "--appservice <url>",
      "appservice mode: write a registration file for the homeserver, which pushes transactions to URL; " +
        "the bot runs as the appservice's user (--user: full user ID; no password, no account touched)",
    )
    .action(
      async (
        dir: string,
        o: { homeserver: string; user: string; password?: string; owner: string[]; appservice?: string },
      ) => {
        const { botInitCommand } = await import("./commands/bot.ts");
        await botInitCommand(
          {
            dir,
            homeserver: o.homeserver,
            user: o.user,
            password: o.appservice === undefined ? await passwordOrAsk(o.password, io) : undefined,
            owners: o.owner,
            ...(o.appservice !== undefined ? { appservice: o.appservice } : {}),
          },
          io,
        );
      },
    );
  bot
    .command("run")
    .description("run the bot in DIR until Ctrl-C (log lines on a terminal, JSON lines otherwise)")
    .argument("<dir>", "the bot's directory")
    .option("--watch", "reload a skill when its file changes, without restarting the client", false)
    .option("--debug", "log debug lines too", false)
    .action(async (dir: string, o: { watch: boolean; debug: boolean }) => {
      const { botRunCommand } = await import("./commands/bot.ts");
      await botRunCommand({ dir, watch: o.watch, debug: o.debug }, io);
    });
  bot
    .command("verify")
    .description("verify USER with the bot (SAS emoji; through the running bot, or its store when stopped)")
    .argument("<user>", "user ID (an owner)", parseUserId("USER"))
    .option("--dir <dir>", "the bot's directory", ".")
    .action(async (user: string, o: { dir: string }) => {
      const { botVerifyCommand } = await import("./commands/bot.ts");
      await botVerifyCommand({ user, dir: o.dir }, io);
    });
  bot
    .command("recover")
    .description("bring the bot in DIR back on this machine (lost disk, new machine) with its recovery key")
    .argument("<dir>", "the bot's directory (its bot.yaml)")
    .option(
      "--password <password>",
      `the bot account's password (or set $${PASSWORD_ENV}); not in appservice mode`,
    )
    .option(
      "--recovery-key <key>",
      `the key bot init printed (or set $${RECOVERY_KEY_ENV}, which ps does not show)`,
    )
    .action(async (dir: string, o: { password?: string; recoveryKey?: string }) => {
      const recoveryKey = o.recoveryKey ?? process.env[RECOVERY_KEY_ENV];
      if (recoveryKey === undefined || recoveryKey === "") {
        throw new CliError("USAGE", `give --recovery-key or set $${RECOVERY_KEY_ENV}`);
      }
      const { botRecoverCommand } = await import("./commands/bot.ts");
      const password = o.password || process.env[PASSWORD_ENV] || undefined;
      await botRecoverCommand({ dir, password, recoveryKey }, io);
    });
  bot
    .command("reset")
    .description(
      "log the bot's device out and delete its session and stores (the next start is a first start)",
    )
    .argument("<dir>", "the bot's directory")
    .action(async (dir: string) => {
      const { botResetCommand } = await import("./commands/bot.ts");
      await botResetCommand({ dir }, io);
    });

  program
    .command("devserver")
    .description("run the development homeserver until Ctrl-C; prints its base URL")
    .option("--port <port>", "TCP port (0 picks a free one)", parseInteger("--port", 0, 65_535), 8008)
    .option("--host <host>", "interface to bind", "127.0.0.1")
    .addOption(
      new Option("--db <path>", "SQLite database file").default("./devserver.sqlite").conflicts("memory"),
    )
    .option("--memory", "keep everything in memory (lost on exit)", false)
    .option("--server-name <name>", "server name in user and room IDs", "localhost")
    .option(
      "--appservice <file>",
      "an application service registration file, YAML or JSON (repeatable)",
      collect,
      [],
    )
    .action(
      async (o: {
        port: number;
        host: string;
        db: string;
        memory: boolean;
        serverName: string;
        appservice: string[];
      }) => {
        // Loaded on use: the homeserver (and its SQLite) is not needed by the client commands.
        const { devserverCommand } = await import("./commands/devserver.ts");
        await devserverCommand(o, io);
      },
    );

  program
    .command("demo")
    .description("two users chat through an embedded in-memory devserver; prints what each sees")
    .option("--no-encryption", "use a plaintext room")
    .option(
      "--store <dir>",
      "keep the demo's stores here (default: a temporary directory, removed afterwards)",
    )
    .action(async (o: { encryption: boolean; store?: string }) => {
      const { runDemo } = await import("./demo.ts");
      await runDemo({
        encryption: o.encryption,
        ...(o.store !== undefined ? { storeDir: o.store } : {}),
        log: (line) => io.out(`${line}\n`),
      });
    });

  // Without a command: the help on stdout (nothing failed); a group without one of its commands
  // is a usage error, on one line like the others.
  program.allowExcessArguments().action(() => {
    if (program.args[0] !== undefined) throw unknownCommand(program.args[0], "keyroom");
    program.outputHelp();
  });
  // Nested groups too (`keyroom verify qr`).
  const groups = (parent: Command, path: string): [Command, string][] =>
    parent.commands
      .filter((c) => c.commands.length > 0)
      .flatMap((c): [Command, string][] => [[c, `${path} ${c.name()}`], ...groups(c, `${path} ${c.name()}`)]);
  for (const [group, name] of groups(program, "keyroom")) {
    group.allowExcessArguments().action(() => {
      const names = group.commands.map((c) => c.name()).join(", ");
      if (group.args[0] !== undefined) throw unknownCommand(group.args[0], name, `${names}; `);
      throw new CliError("USAGE", `${group.name()} needs a command (${names}; see ${name} --help)`);
    });
  }
  return program;
}

/** `given` is not a command of `program` (`keyroom`, `keyroom devices`), whose commands are `names`. */
function unknownCommand(given: string, program: string, names = ""): CliError {
  return new CliError("USAGE", `unknown command '${given}' (${names}see ${program} --help)`);
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit status. */
export async function runCli(argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...argv], { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end here too, with status 0; commander already printed its message.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    io.err(`keyroom: ${errorMessage(err)}\n`);
    if (process.env.KEYROOM_DEBUG && err instanceof Error && err.stack) io.err(`${err.stack}\n`);
    return err instanceof CliError && err.code === "USAGE" ? EXIT_USAGE : EXIT_FAILURE;
  }
}
