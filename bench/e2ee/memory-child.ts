// Child process of the E2EE benchmark's memory row: one machine, fresh, takes in inbound Megolm
// sessions chunk by chunk (a key import of each chunk file, the parsed chunk dropped before the
// next) and reads its RSS after a forced GC at every size. After each chunk it decrypts one event
// of each sampled session of that chunk; after the last size, a second event of every sampled
// session, so the sessions are held usable, not only counted. Prints one JSON line.
//   node --expose-gc --conditions=source --import tsx bench/e2ee/memory-child.ts <sqlite|memory|wasm> <fixture dir> <dir>
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers/promises";
import { MemoryCryptoStore, SqliteCryptoStore } from "../../src/store/index.ts";
import { loadVodozemac } from "../../test/support/vodozemac.ts";
import { BenchHomeserver } from "./homeserver.ts";
import type { MemoryChildReport, MemoryFixtureManifest, MemoryPoint, MemorySample } from "./memory.ts";
import { KeyroomPeer, type MachineUnderTest, WasmPeer } from "./peers.ts";

const [side, fixtureDir, dir] = process.argv.slice(2);
if (side === undefined || fixtureDir === undefined || dir === undefined) {
  throw new Error("usage: memory-child.ts <sqlite|memory|wasm> <fixture dir> <dir>");
}
const gc = globalThis.gc;
if (gc === undefined) throw new Error("memory-child.ts needs node --expose-gc");
const manifest = JSON.parse(readFileSync(join(fixtureDir, "manifest.json"), "utf8")) as MemoryFixtureManifest;
const samples = JSON.parse(readFileSync(join(fixtureDir, "samples.json"), "utf8")) as MemorySample[][];

const hs = new BenchHomeserver();
const userId = "@memory:bench.test";
let m: MachineUnderTest;
if (side === "wasm") {
  m = await WasmPeer.create(await loadVodozemac(), hs, userId, "MEMORY");
} else {
  const store =
    side === "sqlite"
      ? await SqliteCryptoStore.open({ directory: join(dir, "store"), userId, deviceId: "MEMORY" })
      : await MemoryCryptoStore.open({ userId, deviceId: "MEMORY" });
  m = await KeyroomPeer.create(hs, store, userId, "MEMORY");
}

/** RSS once garbage is collected: full GCs with turns of the event loop between them (finalizers run). */
async function settled(sessions: number): Promise<MemoryPoint> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await setImmediate();
  }
  const u = process.memoryUsage();
  return { sessions, rssMb: u.rss / (1024 * 1024), heapUsedMb: u.heapUsed / (1024 * 1024) };
}

async function decryptsAs(e: MemorySample["first"]): Promise<boolean> {
  return (await m.decrypt(e.json, e.roomId)) === e.body;
}

const empty = await settled(0);
const points: MemoryPoint[] = [];
for (let c = 0; c < manifest.chunks; c++) {
  const imported = await m.importEntries(
    JSON.parse(readFileSync(join(fixtureDir, `chunk-${c}.json`), "utf8")) as unknown[],
  );
  if (imported !== manifest.chunkSize)
    throw new Error(`${side}: imported ${imported} of ${manifest.chunkSize}`);
  for (const s of samples[c] ?? []) {
    if (!(await decryptsAs(s.first))) throw new Error(`${side}: a sampled session did not decrypt`);
  }
  points.push(await settled((c + 1) * manifest.chunkSize));
}
let heldSamples = 0;
for (const chunk of samples) for (const s of chunk) if (await decryptsAs(s.second)) heldSamples++;
await m.close();
const report: MemoryChildReport = {
  side,
  empty,
  points,
  heldSamples,
  samples: samples.reduce((n, chunk) => n + chunk.length, 0),
};
console.log(JSON.stringify(report));
