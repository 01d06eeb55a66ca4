// The Keyroom side of the bot benchmark (bench/bots.ts): an echo bot with E2EE, run as its own
// process, as `keyroom bot run` would run it. argv: homeserver URL, data directory, user, password.
// Prints `{"ready":true,"userId":…}` once syncing. `!stats` answers "stats <joined rooms> <RSS
// bytes> <CPU µs so far>" (user + system time of the bot's process).
import { arg, Bot, openBotClient } from "../src/bot/index.ts";

const [homeserverUrl, dataDir, userId, password] = process.argv.slice(2) as [string, string, string, string];
const { client } = await openBotClient({ dataDir, homeserverUrl, userId, password, register: true });
const bot = new Bot({ client, invites: "anyone", help: false });
bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text));
bot.command("stats", {}, (ctx) => {
  const cpu = process.cpuUsage();
  return ctx.reply(
    `stats ${client.getRooms("join").length} ${process.memoryUsage().rss} ${cpu.user + cpu.system}`,
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
