// Child process for the lease test: opens the store given on the command line, takes its lease
// (renewing it like a client does), writes, says "ready", and holds it until killed (the parent
// kills it with SIGKILL to show that a dead holder's lease expires and the store is not stuck).
import { SqliteCryptoStore } from "./sqlite-store.ts";

const directory = process.argv[2];
const durationMs = Number(process.argv[3]);
if (directory === undefined || !(durationMs > 0)) {
  throw new Error("usage: lock-holder.fixture.ts <directory> <lease ms>");
}
const store = await SqliteCryptoStore.open({
  userId: "@alice:example.org",
  deviceId: "ALICEDEVICE",
  directory,
});
if ((await store.tryAcquireLease(durationMs)) === undefined) throw new Error("lease not free");
await store.saveChanges({ nextBatch: "from-the-holder" });
setInterval(() => void store.renewLease(durationMs), durationMs / 4);
process.stdout.write("ready\n");
