// Child process of the E2EE benchmark: one machine, fresh, imports an export file. Each peer runs in
// its own process so neither inherits the other's heap or JIT state. Prints one JSON line.
//   node --conditions=source --import tsx bench/e2ee/import-child.ts <sqlite|memory|wasm> <fixture.json> <dir>
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MemoryCryptoStore, SqliteCryptoStore } from "../../src/store/index.ts";
import { loadVodozemac } from "../../test/support/vodozemac.ts";
import { EXPORT_PASSPHRASE, type ExportFixture } from "./export-file.ts";
import { BenchHomeserver } from "./homeserver.ts";
import { type ImportResult, KeyroomPeer, type MachineUnderTest, WasmPeer } from "./peers.ts";

export interface ImportChildReport extends ImportResult {
  side: string;
  probeOk: boolean;
  rssMb: number;
}

const [side, fixtureFile, dir] = process.argv.slice(2);
if (side === undefined || fixtureFile === undefined || dir === undefined) {
  throw new Error("usage: import-child.ts <sqlite|memory|wasm> <fixture.json> <dir>");
}
const fixture = JSON.parse(readFileSync(fixtureFile, "utf8")) as ExportFixture;
const hs = new BenchHomeserver();
const userId = "@import:bench.test";
let m: MachineUnderTest;
if (side === "wasm") {
  const wasm = await loadVodozemac();
  m = await WasmPeer.create(wasm, hs, userId, "IMPORT");
} else {
  const store =
    side === "sqlite"
      ? await SqliteCryptoStore.open({ directory: join(dir, "store"), userId, deviceId: "IMPORT" })
      : await MemoryCryptoStore.open({ userId, deviceId: "IMPORT" });
  m = await KeyroomPeer.create(hs, store, userId, "IMPORT");
}
const result = await m.importExportFile(fixture.file, EXPORT_PASSPHRASE);
const probeOk = (await m.decrypt(JSON.stringify(fixture.probe), fixture.probe.room_id)) === fixture.probeBody;
const rssMb = process.memoryUsage().rss / (1024 * 1024);
await m.close();
const report: ImportChildReport = { ...result, side, probeOk, rssMb };
console.log(JSON.stringify(report));
