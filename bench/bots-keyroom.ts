// The Keyroom side of the bot benchmark (bench/bots.ts): an echo bot with E2EE, run as its own
// process, as `keyroom bot run` would run it. argv: homeserver URL, data directory, user, password.
// Prints `{"ready":true,"userId":…}` once syncing. `!rss` answers "<joined rooms> <RSS bytes>".
import { arg, Bot, openBotClient } from "../src/bot/index.ts";

const [homeserverUrl, dataDir, userId, password] = process.argv.slice(2) as [string, string, string, string];
const { client } = await openBotClient({ dataDir, homeserverUrl, userId, password, register: true });
const bot = new Bot({ client, invites: "anyone", help: false });
bot.command("echo", { args: { text: arg.rest() } }, (ctx, { text }) => ctx.reply(text));
bot.command("rss", {}, (ctx) => ctx.reply(`${client.getRooms("join").length} ${process.memoryUsage().rss}`));
await bot.start();
process.stdout.write(`${JSON.stringify({ ready: true, userId: client.userId })}\n`);
const stop = async () => {
  await bot.stop();
  await client.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
