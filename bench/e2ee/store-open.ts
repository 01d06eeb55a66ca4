// Child process of the E2EE benchmark: opens a SQLite crypto store full of inbound sessions and
// decrypts one event, in a fresh process so that its RSS is the store's and the machine's, not the
// benchmark's. Prints one JSON line.
//   node --conditions=source --import tsx bench/e2ee/store-open.ts <directory> <userId> <deviceId> <event.json>
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { OlmMachine } from "../../src/e2ee/index.ts";
import { SqliteCryptoStore } from "../../src/store/index.ts";
import type { RoomEventJson } from "./fake-devices.ts";

export interface StoreOpenReport {
  /** Open the store and the machine. */
  openMs: number;
  /** From the start of the open to the first decrypted event. */
  firstDecryptMs: number;
  /** CPU time (all threads) of the same span. */
  firstDecryptCpuMs: number;
  /** RSS once everything is loaded but before the open (Node, tsx, the modules). */
  baselineRssMb: number;
  /** RSS after the first decryption. */
  rssMb: number;
  inboundSessions: number;
  body: unknown;
}

const [directory, userId, deviceId, eventFile] = process.argv.slice(2);
if (directory === undefined || userId === undefined || deviceId === undefined || eventFile === undefined) {
  throw new Error("usage: store-open.ts <directory> <userId> <deviceId> <event.json>");
}
const event = JSON.parse(readFileSync(eventFile, "utf8")) as RoomEventJson;
const mb = (bytes: number) => bytes / (1024 * 1024);
const baselineRssMb = mb(process.memoryUsage().rss);

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const store = await SqliteCryptoStore.open({ directory, userId, deviceId });
const machine = await OlmMachine.open({ userId, deviceId, store });
const t1 = performance.now();
const decrypted = await machine.decryptRoomEvent(event, event.room_id);
const t2 = performance.now();
const cpu = process.cpuUsage(cpu0);
const rssMb = mb(process.memoryUsage().rss);
const counts = await store.countInboundGroupSessions();
await machine.close();
await store.close();

const report: StoreOpenReport = {
  openMs: t1 - t0,
  firstDecryptMs: t2 - t0,
  firstDecryptCpuMs: (cpu.user + cpu.system) / 1000,
  baselineRssMb,
  rssMb,
  inboundSessions: counts.total,
  body: decrypted.content.body,
};
console.log(JSON.stringify(report));
