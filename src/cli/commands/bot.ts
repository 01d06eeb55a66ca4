// `keyroom bot init DIR` / `bot run DIR [--watch]` / `bot verify USER [--dir DIR]` /
// `bot reset DIR`: the bot framework (src/bot) from the shell. See docs/bots.md.
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { localDevice } from "../../bot/appservice/directory.ts";
import {
  initAppserviceBot,
  type OpenedAppserviceBot,
  openAppserviceBot,
  recoverAppserviceBot,
  resetAppserviceBot,
} from "../../bot/appservice/index.ts";
import { controlSocketPath, runVerification, type VerifyEvent } from "../../bot/control.ts";
import {
  Bot,
  BotInitError,
  BotStartError,
  CONFIG_FILE,
  createBotLogger,
  initBotDir,
  openBotClient,
  readConfig,
  resetBot,
  runBotDir,
} from "../../bot/index.ts";
import { CliError } from "../errors.ts";
import { jsonLine } from "../output.ts";
import type { CommandIo } from "./io.ts";
import { drawSas } from "./verify.ts";

/** `bot run` logs on stdout; a one-shot command passes `io.err`, keeping stdout for its result line. */
function loggerFor(
  io: CommandIo,
  level: "debug" | "info" = "info",
  write: (line: string) => void = (l) => io.out(l),
) {
  return createBotLogger({ format: io.interactive === true ? "pretty" : "json", level, write });
}

export interface BotInitArgs {
  dir: string;
  homeserver: string;
  user: string;
  /** Absent in appservice mode (no account is touched). */
  password: string | undefined;
  owners: string[];
  /** Appservice mode: the URL the homeserver pushes transactions to. */
  appservice?: string;
}

export async function botInitCommand(args: BotInitArgs, io: CommandIo): Promise<void> {
  const dir = resolve(args.dir);
  if (args.appservice !== undefined) return appserviceInit({ ...args, appservice: args.appservice }, io);
  if (args.password === undefined)
    throw new CliError("USAGE", "bot init needs --password (or $KEYROOM_PASSWORD)");
  const made = await initBotDir({
    dir,
    homeserverUrl: args.homeserver,
    user: args.user,
    password: args.password,
    owners: args.owners,
    logger: createBotLogger({ format: "pretty", level: "warn", write: (l) => io.err(l) }),
  });
  io.out(
    jsonLine({
      event: "initialized",
      dir,
      user_id: made.userId,
      device_id: made.deviceId,
      config: made.configFile,
      recovery_key: made.recoveryKey ?? null,
    }),
  );
  if (io.interactive === true) {
    if (made.recoveryKey !== undefined) {
      io.err(
        `\nThe bot's recovery key (shown this once; keep it with the password, off this machine):\n\n  ${made.recoveryKey}\n\n` +
          `With both, \`keyroom bot recover ${args.dir}\` brings the bot back on a new machine.\n`,
      );
    }
    io.err(
      `\nThe bot ${made.userId} (device ${made.deviceId}) is ready. Run it with:\n  keyroom bot run ${args.dir}\n`,
    );
  }
}

async function appserviceInit(args: BotInitArgs & { appservice: string }, io: CommandIo): Promise<void> {
  const dir = resolve(args.dir);
  if (existsSync(join(dir, CONFIG_FILE))) {
    throw new CliError("USAGE", `${join(dir, CONFIG_FILE)} exists already: this is a bot; run it`);
  }
  const made = await initAppserviceBot({
    dir,
    homeserverUrl: args.homeserver,
    userId: args.user,
    url: args.appservice,
    owners: args.owners,
  }).catch((e: unknown) => {
    // --user or --appservice is not what appservice mode needs.
    throw e instanceof BotInitError ? new CliError("USAGE", e.message) : e;
  });
  io.out(
    jsonLine({
      event: "initialized",
      dir,
      user_id: args.user,
      device_id: null,
      config: made.configFile,
      recovery_key: null,
      registration: made.registrationFile,
    }),
  );
  if (io.interactive === true) {
    io.err(
      `\nLoad ${made.registrationFile} in the homeserver (keyroom devserver --appservice FILE; Synapse:\n` +
        `app_service_config_files), restart it, then run the bot with:\n  keyroom bot run ${args.dir}\n`,
    );
  }
}

export async function botRunCommand(
  args: { dir: string; watch: boolean; debug: boolean },
  io: CommandIo,
): Promise<void> {
  // Watched from the start: a signal while the bot starts (or its appservice begins to listen)
  // asks for a clean stop once it has started, rather than the CLI ending it mid-start.
  const stopRequested = new Promise<void>((done) => {
    if (io.signal === undefined) return; // nothing can stop it but the process ending
    if (io.signal.aborted) return done();
    io.signal.addEventListener("abort", () => done(), { once: true });
  });
  const logger = loggerFor(io, args.debug ? "debug" : "info");
  const dir = resolve(args.dir);
  const config = await readConfig(join(dir, CONFIG_FILE));
  // Appservice mode: the appservice's client for the bot's user, fed by the transactions endpoint.
  const appservice =
    config.appservice === undefined
      ? undefined
      : await openAppserviceBot({
          dir,
          config,
          dataDir: resolve(dir, config.dataDir),
          logger,
          hints: appserviceHints(args.dir),
        });
  if (appservice !== undefined) showRecoveryKey(appservice, args.dir, io);
  let running: Awaited<ReturnType<typeof runBotDir>>;
  try {
    running = await runBotDir(dir, {
      logger,
      watch: args.watch,
      ...(appservice ? { client: appservice.client } : {}),
    });
  } catch (e) {
    await appservice?.appservice.close();
    throw e;
  }
  try {
    // Transactions only now: the bot's handlers are on its client.
    await appservice?.listen();
  } catch (e) {
    await running.stop();
    await appservice?.appservice.close();
    throw e;
  }
  // A promise a skill started and did not await (long work, as docs/bots.md advises) that fails is
  // logged, as the error boundary logs what handlers await: it does not end the bot's process.
  const stray = (err: unknown) =>
    logger.error({ err }, "a promise nobody awaited failed (a skill's?); the bot goes on");
  process.on("unhandledRejection", stray);
  try {
    await stopRequested;
  } finally {
    process.off("unhandledRejection", stray);
    await running.stop();
    await appservice?.appservice.close();
  }
}

/** How an appservice bot's refusals name the ways out, for the bot directory given as `dirArg`. */
function appserviceHints(dirArg: string): { recover: string; reset: string } {
  return {
    recover: `KEYROOM_RECOVERY_KEY=… keyroom bot recover ${dirArg}`,
    reset: `keyroom bot reset ${dirArg}`,
  };
}

/**
 * The recovery key an appservice bot's start just set up (its first start, or one completing an
 * interrupted set-up, even under `bot verify`): it goes out once, as `bot init` prints it for a bot
 * with its own account, since it is never stored.
 */
function showRecoveryKey(opened: OpenedAppserviceBot, dirArg: string, io: CommandIo): void {
  if (opened.recoveryKey === undefined) return;
  io.out(
    jsonLine({
      event: "recovery",
      user_id: opened.client.userId,
      device_id: opened.client.deviceId,
      recovery_key: opened.recoveryKey,
    }),
  );
  if (io.interactive === true) {
    io.err(
      `\nThe bot's recovery key (shown this once; keep it off this machine):\n\n  ${opened.recoveryKey}\n\n` +
        `With it, \`keyroom bot recover ${dirArg}\` brings the bot back on a new machine.\n`,
    );
  }
}

/**
 * Verifies USER with the bot in DIR: through the running bot's control socket, or, when the bot
 * is not running, by opening its device here. Same JSON lines as `keyroom verify` (`sas`, then a
 * `y` line on stdin confirms; `done` or `cancelled`).
 */
export async function botVerifyCommand(args: { user: string; dir: string }, io: CommandIo): Promise<void> {
  const dir = resolve(args.dir);
  const config = await readConfig(resolve(dir, CONFIG_FILE));
  const dataDir = resolve(dir, config.dataDir);
  const report = (e: VerifyEvent) => {
    io.out(jsonLine(e));
    if (e.event === "sas" && io.interactive === true) io.err(drawSas(e.emoji, e.decimals));
  };
  const confirm = async () => (await io.readLine?.())?.trim() === "y";
  const viaSocket = await verifyThroughSocket(controlSocketPath(dataDir), args.user, report, confirm);
  let ok: boolean;
  if (viaSocket !== undefined) ok = viaSocket;
  else if (config.appservice !== undefined) {
    if (localDevice(dataDir, config.user) !== "complete") {
      throw new CliError(
        "USAGE",
        `the bot in ${dir} has no device here yet: run it once (keyroom bot run ${args.dir}), then verify`,
      );
    }
    const opened = await openAppserviceBot({
      dir,
      config,
      dataDir,
      hints: appserviceHints(args.dir),
    });
    showRecoveryKey(opened, args.dir, io);
    const bot = new Bot({ client: opened.client, help: false });
    try {
      // The verification's events are handled now; commands sent meanwhile are also held for
      // the bot's next start, which answers them.
      await opened.listen({ holdRoomEvents: true });
      ok = await runVerification(bot, args.user, report, confirm);
    } finally {
      await opened.appservice.close();
    }
  } else {
    const { client } = await openBotClient({
      dataDir,
      homeserverUrl: config.homeserver,
      userId: config.user,
      resetHint: `keyroom bot reset ${args.dir}`,
      // Commands sent while verifying are the bot's to answer at its next start.
      keepSyncPosition: true,
    });
    const bot = new Bot({ client, help: false });
    try {
      await client.startSync();
      ok = await runVerification(bot, args.user, report, confirm);
    } finally {
      await client.stopSync().catch(() => undefined);
      await client.close();
    }
  }
  if (!ok) throw new CliError("VERIFICATION_CANCELLED", "verification did not complete");
}

/** undefined when no bot listens on the socket. */
async function verifyThroughSocket(
  path: string,
  userId: string,
  report: (e: VerifyEvent) => void,
  confirm: () => Promise<boolean>,
): Promise<boolean | undefined> {
  const socket = connect(path);
  const connected = await new Promise<boolean>((done) => {
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
  if (!connected) return undefined;
  socket.on("error", () => undefined); // a write after the bot closed: the loop below ends anyway
  socket.write(`${JSON.stringify({ verify: userId })}\n`);
  let result = false;
  for await (const line of createInterface({ input: socket })) {
    let e: VerifyEvent;
    try {
      e = JSON.parse(line) as VerifyEvent;
    } catch {
      continue;
    }
    if (e.event === "error") throw new CliError("VERIFICATION_CANCELLED", `the bot said: ${e.message}`);
    report(e);
    // Not awaited here: a cancel the bot reports meanwhile is read and ends the command.
    if (e.event === "sas") {
      void confirm().then((yes) => {
        if (socket.writable) socket.write(`${JSON.stringify({ confirm: yes })}\n`);
      });
    }
    if (e.event === "done") result = true;
  }
  return result;
}

/** Brings the bot in DIR back on this machine: a new device recovers its identity, keys and state. */
export async function botRecoverCommand(
  args: { dir: string; password: string | undefined; recoveryKey: string },
  io: CommandIo,
): Promise<void> {
  const dir = resolve(args.dir);
  const config = await readConfig(resolve(dir, CONFIG_FILE));
  const dataDir = resolve(dir, config.dataDir);
  const logger = createBotLogger({ format: "pretty", level: "warn", write: (l) => io.err(l) });
  if (config.appservice !== undefined) {
    // No password: the appservice acts for the bot's user.
    const recovered = await recoverAppserviceBot({
      dir,
      config,
      dataDir,
      recoveryKey: args.recoveryKey,
      logger,
      hints: { run: `keyroom bot run ${args.dir}` },
    }).catch((e: unknown) => {
      // Nothing to recover: as for a bot with its own account, a usage error.
      throw e instanceof BotStartError && e.code === "DEVICE_PRESENT" ? new CliError("USAGE", e.message) : e;
    });
    io.out(
      jsonLine({
        event: "recovered",
        user_id: recovered.userId,
        device_id: recovered.deviceId,
        cross_signed: recovered.crossSigned,
        restored_keys: recovered.restoredKeys,
        deleted_devices: recovered.deletedDevices,
      }),
    );
    return;
  }
  // A bot with its own account logs a new device in with its password.
  if (args.password === undefined) throw new CliError("USAGE", "give --password or set $KEYROOM_PASSWORD");
  const opened = await openBotClient({
    dataDir,
    homeserverUrl: config.homeserver,
    userId: config.user,
    password: args.password,
    recoveryKey: args.recoveryKey,
    deviceDisplayName: "Keyroom bot",
    logger,
    resetHint: `keyroom bot reset ${args.dir}`,
  });
  try {
    if (opened.recovered === undefined) {
      throw new CliError(
        "USAGE",
        `${dir} still has its device and stores: run it (keyroom bot run ${args.dir})`,
      );
    }
    await opened.client.syncOnce({ timeoutMs: 0 });
    io.out(
      jsonLine({
        event: "recovered",
        user_id: opened.client.userId,
        device_id: opened.client.deviceId,
        cross_signed: opened.recovered.crossSigned,
        restored_keys: opened.recovered.restoredKeys,
      }),
    );
  } finally {
    await opened.client.close();
  }
}

export async function botResetCommand(args: { dir: string }, io: CommandIo): Promise<void> {
  const dir = resolve(args.dir);
  const config = await readConfig(resolve(dir, CONFIG_FILE));
  const dataDir = resolve(dir, config.dataDir);
  const logger = loggerFor(io, "info", (l) => io.err(l));
  if (config.appservice !== undefined) {
    const { deletedDevices } = await resetAppserviceBot({ dir, config, dataDir, logger });
    io.out(jsonLine({ event: "reset", dir, data_dir: dataDir, deleted_devices: deletedDevices }));
    return;
  }
  await resetBot(dataDir, logger);
  io.out(jsonLine({ event: "reset", dir, data_dir: dataDir }));
}
