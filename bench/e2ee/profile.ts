// One E2EE workload on Keyroom alone, for the profiler:
//   node --conditions=source --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/e2ee/profile.ts <workload> [sqlite]
// workload: share | scratch | encrypt | todevice | decrypt | import. Counts follow KEYROOM_BENCH_SCALE.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoStore, MemoryCryptoStore, SqliteCryptoStore } from "../../src/store/index.ts";
import { buildExportFile } from "./export-file.ts";
import { makeFakeDevices, type RoomEventJson } from "./fake-devices.ts";
import { BenchHomeserver } from "./homeserver.ts";
import { KeyroomPeer } from "./peers.ts";

const workloads = ["share", "scratch", "encrypt", "todevice", "decrypt", "import"] as const;
type Workload = (typeof workloads)[number];
const workload = process.argv[2] as Workload;
if (!workloads.includes(workload)) throw new Error(`workload must be one of ${workloads.join(", ")}`);
const useSqlite = process.argv[3] === "sqlite";
const scale = Number(process.env.KEYROOM_BENCH_SCALE ?? 1);
const users = Math.max(1, Math.round((1000 * scale) / 4));
const tmp = mkdtempSync(join(tmpdir(), "keyroom-e2ee-profile-"));

const hs = new BenchHomeserver();
const fakes = makeFakeDevices(users, 4);
for (const f of fakes) hs.addFakeDevice(f, 1);
const members = [...new Set(fakes.map((f) => f.userId))];
const userId = "@profile:bench.test";
const store: CryptoStore = useSqlite
  ? await SqliteCryptoStore.open({ directory: tmp, userId, deviceId: "PROFILE" })
  : await MemoryCryptoStore.open({ userId, deviceId: "PROFILE" });
const peer = await KeyroomPeer.create(hs, store, userId, "PROFILE");
await peer.track(members);
const room = "!profile:bench.test";
const t0 = performance.now();
let ops = 1;

switch (workload) {
  case "scratch":
    await peer.claimMissing(members);
    await peer.share(room, [userId, ...members]);
    break;
  case "share":
  case "encrypt":
    await peer.claimMissing(members);
    await peer.share(room, [userId, ...members]);
    if (workload === "share") {
      ops = 5;
      for (let i = 0; i < ops; i++) {
        await peer.discard(room);
        await peer.share(room, [userId, ...members]);
      }
    } else {
      ops = Math.round(5000 * scale);
      for (let i = 0; i < ops; i++) await peer.encrypt(room, `message ${i}`);
    }
    break;
  case "todevice":
  case "decrypt": {
    await peer.receiveSync(hs.syncFor(userId, "PROFILE"));
    await peer.flush();
    const to = hs.keysOf(userId, "PROFILE").keys;
    const recipient = {
      userId,
      curve25519: to["curve25519:PROFILE"] ?? "",
      ed25519: to["ed25519:PROFILE"] ?? "",
    };
    for (const f of fakes)
      hs.deliver(userId, "PROFILE", [f.roomKeyTo(recipient, hs.claimOne(userId, "PROFILE"), room)]);
    await peer.receiveSync(hs.syncFor(userId, "PROFILE"));
    if (workload === "decrypt") {
      const events: RoomEventJson[] = [];
      for (let r = 0; events.length < 10_000 * scale; r++)
        for (const f of fakes) events.push(f.roomEvent(room, `m${r}`));
      ops = events.length;
      for (const e of events) await peer.decrypt(e);
    }
    break;
  }
  case "import": {
    const fixture = buildExportFile(Math.round(100_000 * scale), fakes);
    ops = fixture.count;
    await peer.importExportFile(fixture.file, "correct horse battery staple");
    break;
  }
}
const ms = performance.now() - t0;
console.log(
  `${workload}${useSqlite ? " (sqlite)" : ""}: ${ops} ops in ${ms.toFixed(0)} ms (includes setup after tracking)`,
);
await peer.close();
rmSync(tmp, { recursive: true, force: true });
