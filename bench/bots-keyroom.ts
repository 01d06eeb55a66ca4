// The Keyroom side of the bot benchmark (bench/bots.ts): an echo bot with E2EE, run as its own
// process, as `keyroom bot run` would run it. argv: homeserver URL, data directory, user, password.
// Prints `{"ready":true,"userId":…}` once syncing. `!stats` answers "stats <joined rooms> <RSS
// bytes> <CPU µs so far> <main thread CPU µs so far>" (user + system time of the bot's process, then
// of its main thread alone, -1 where /proc cannot tell: see `mainThreadCpuMicros` in bench/bots.ts).
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { arg, Bot, openBotClient } from "../src/bot/index.ts";
import { mainThreadCpuMicros } from "./bots-thread-cpu.ts";

/**
 * `KEYROOM_BENCH_BOT_PROFILE=DIR`: a CPU profile of the command phase (from one `!stats` to the
 * next) is written to DIR/bot-N.cpuprofile, for `node --cpu-prof`-style analysis without the setup.
 */
const PROFILE_DIR = process.env.KEYROOM_BENCH_BOT_PROFILE;
let profiler: Session | undefined;
let profiles = 0;
async function toggleProfile(): Promise<void> {
  if (PROFILE_DIR === undefined) return;
  if (profiler === undefined) {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
    return;
  }
  const { profile } = await profiler.post("Profiler.stop");
  writeFileSync(join(PROFILE_DIR, `bot-${process.pid}-${profiles++}.cpuprofile`), JSON.stringify(profile));
  profiler.disconnect();
  profiler = undefined;
}

const [homeserverUrl, dataDir, userId, password] = process.argv.slice(2) as [string, string, string, string];
const { client } = await openBotClient({ dataDir, homeserverUrl, userId, password, register: true });
// The bench's users invite the bot into 1 000 rooms: far past the limits that protect a bot open
// to anyone's invitations (`inviteLimits`), which would otherwise decline most of them. Each user
// also sends its commands as fast as the answers come, past the loop breaker's answers per room
// and minute (`answerLimits`, 120 by default): with `KEYROOM_BENCH_BOT_COMMANDS` near 120 the bot
// stopped answering and the run waited for ever.
const bot = new Bot({
  client,
  invites: "anyone",
  inviteLimits: { maxRooms: 100_000, perInviterPerHour: 100_000 },
  answerLimits: { perRoomPerMinute: 1_000_000 },
  help: false,
});
bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text));
bot.command("stats", {}, async (ctx) => {
  await toggleProfile();
  const cpu = process.cpuUsage();
  return ctx.reply(
    `stats ${client.getRooms("join").length} ${process.memoryUsage().rss} ${cpu.user + cpu.system} ${mainThreadCpuMicros()}`,
  );
});
await bot.start();
process.stdout.write(`${JSON.stringify({ ready: true, userId: client.userId })}\n`);
const stop = async () => {
  await bot.stop();
  await client.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
