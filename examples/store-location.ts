// Store location: put the SQLite crypto store where you want it (the Python SDK's `db_path` and
// `db_name`). Several processes may use one store at once (they take turns through its lease, see
// docs/stores.md): here an admin script reads the bot's store while the bot runs.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MatrixClient } from "keyroom";
import { SqliteCryptoStore } from "keyroom/store";
import { type ExampleEnv, isMain, runAlone, uniqueName } from "./support.ts";

/** What this program, started as a second process, reports on stdout (one JSON line). */
interface SecondProcessReport {
  /** The device the store belongs to. */
  readonly deviceId: string;
  /** Room keys it holds. */
  readonly roomKeys: number;
}

export interface StoreLocationResult {
  readonly fileExists: boolean;
  /** The second process while the first one runs. */
  readonly whileRunning: SecondProcessReport;
  /** The second process after the first one closed its client. */
  readonly afterClose: SecondProcessReport;
  readonly deviceId: string;
}

interface BotConfig {
  readonly homeserverUrl: string;
  readonly userId: string;
  readonly directory: string;
}

// #region store-location
/** The bot's client: its crypto store is `<directory>/bot.sqlite3` (and `bot.sqlite3.key`). */
function botClient({ homeserverUrl, directory }: BotConfig): MatrixClient {
  return new MatrixClient({
    homeserverUrl,
    encryption: {
      store: { directory, fileName: "bot.sqlite3" },
      restoreDeviceId: true, // come back as the device the store holds
      // passphrase: process.env.BOT_STORE_PASSPHRASE, // else a random key file beside the store
    },
  });
}

/** An admin script, in another process, on the bot's store (while the bot runs, or not). */
async function secondProcess({ userId, directory }: BotConfig): Promise<SecondProcessReport> {
  // Not refused while the bot has it open: reads need no lease, and a write would take turns.
  const store = await SqliteCryptoStore.open({ userId, directory, fileName: "bot.sqlite3" });
  try {
    const { deviceId } = await store.loadIdentity();
    return { deviceId, roomKeys: (await store.countInboundGroupSessions()).total };
  } finally {
    await store.close();
  }
}
// #endregion store-location

const self = fileURLToPath(import.meta.url);

/** Runs this file as another process (`--second-process`) and reads its report. */
async function startSecondProcess(config: BotConfig): Promise<SecondProcessReport> {
  const { stdout } = await promisify(execFile)(process.execPath, [
    "--conditions=source",
    "--import",
    "tsx",
    self,
    "--second-process",
    JSON.stringify(config),
  ]);
  const report: unknown = JSON.parse(stdout);
  if (
    typeof report === "object" &&
    report !== null &&
    "deviceId" in report &&
    typeof report.deviceId === "string" &&
    "roomKeys" in report &&
    typeof report.roomKeys === "number"
  ) {
    return { deviceId: report.deviceId, roomKeys: report.roomKeys };
  }
  throw new Error(`unexpected report from the second process: ${stdout.slice(0, 200)}`);
}

function parseConfig(json: string): BotConfig {
  const c: unknown = JSON.parse(json);
  if (
    typeof c === "object" &&
    c !== null &&
    "homeserverUrl" in c &&
    typeof c.homeserverUrl === "string" &&
    "userId" in c &&
    typeof c.userId === "string" &&
    "directory" in c &&
    typeof c.directory === "string"
  ) {
    return { homeserverUrl: c.homeserverUrl, userId: c.userId, directory: c.directory };
  }
  throw new Error("--second-process needs a JSON bot config");
}

export async function run({ homeserverUrl, dir }: ExampleEnv): Promise<StoreLocationResult> {
  const password = "the bot's password";
  const signup = new MatrixClient({ homeserverUrl });
  await signup.register({ username: uniqueName("bot"), password });
  const config: BotConfig = { homeserverUrl, userId: signup.userId, directory: join(dir, "bot-data") };
  await signup.logout();

  const bot = botClient(config);
  await bot.login({ user: config.userId, password });
  await bot.startSync();
  const fileExists = existsSync(join(config.directory, "bot.sqlite3"));
  const whileRunning = await startSecondProcess(config);
  await bot.close();
  const afterClose = await startSecondProcess(config);
  return { fileExists, whileRunning, afterClose, deviceId: bot.deviceId };
}

if (isMain(import.meta.url)) {
  const config = process.argv[2] === "--second-process" ? process.argv[3] : undefined;
  if (config === undefined) await runAlone(run);
  else console.log(JSON.stringify(await secondProcess(parseConfig(config))));
}
