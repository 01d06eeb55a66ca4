// The matrix-bot-sdk side of the bot benchmark (bench/bots.ts): an echo bot in plain rooms, run as
// its own process. Plain JavaScript, outside the type check: matrix-bot-sdk lives in this folder's
// own node_modules (npm --prefix bench/bots install), which the main install does not have.
// argv: homeserver URL, access token. Prints `{"ready":true}` once syncing.
const {
  AutojoinRoomsMixin,
  LogLevel,
  LogService,
  MatrixClient,
  MemoryStorageProvider,
} = require("matrix-bot-sdk");

const [homeserverUrl, accessToken] = process.argv.slice(2);
LogService.setLevel(LogLevel.ERROR);
const client = new MatrixClient(homeserverUrl, accessToken, new MemoryStorageProvider());
AutojoinRoomsMixin.setupOnClient(client);
client.on("room.message", async (roomId, event) => {
  const body = event.content?.body;
  if (typeof body !== "string" || event.sender === botUserId) return;
  if (body.startsWith("!echo ")) await client.sendText(roomId, body.slice("!echo ".length));
  else if (body === "!stats") {
    const joined = await client.getJoinedRooms();
    const cpu = process.cpuUsage();
    await client.sendText(
      roomId,
      `stats ${joined.length} ${process.memoryUsage().rss} ${cpu.user + cpu.system}`,
    );
  }
});
let botUserId;
client.getUserId().then(async (id) => {
  botUserId = id;
  await client.start();
  process.stdout.write(`${JSON.stringify({ ready: true, userId: id })}\n`);
});
