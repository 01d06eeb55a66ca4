// Child process for the lock test: opens the store given on the command line, says "ready", and
// holds it until killed (the parent kills it with SIGKILL to show a dead holder releases the lock).
import { SqliteCryptoStore } from "./sqlite-store.ts";

const directory = process.argv[2];
if (directory === undefined) throw new Error("usage: lock-holder.fixture.ts <directory>");
await SqliteCryptoStore.open({ userId: "@alice:example.org", deviceId: "ALICEDEVICE", directory });
process.stdout.write("ready\n");
setInterval(() => {}, 1 << 30);
