// One E2EE workload on Keyroom alone, with the CPU profiler running over the measured section only
// (setup excluded). Writes the .cpuprofile (open it in Chrome DevTools) and prints the functions
// with the most self time, per operation:
//   node --conditions=source --import tsx bench/e2ee/profile.ts <workload> [sqlite]
// With KEYROOM_PROFILE=off it only times the section (the profiler's own cost left out).
// workload: share | scratch | encrypt | todevice | decrypt | import. Counts follow KEYROOM_BENCH_SCALE.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoStore, MemoryCryptoStore, SqliteCryptoStore } from "../../src/store/index.ts";
import { buildExportFile, EXPORT_PASSPHRASE } from "./export-file.ts";
import { makeFakeDevices } from "./fake-devices.ts";
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

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name and file), largest first. */
function selfTimes(profile: Profile): [string, number][] {
  const perNode = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    perNode.set(id, (perNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const perFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url } = node.callFrame;
    // Native frames have no URL (and addon symbols may be misnamed by the nearest export).
    const file = url === "" ? "(native)" : url.replace(/^.*\/(node_modules|src|bench)\//, "$1/");
    const key = `${file}:${functionName || "(anonymous)"}`;
    perFunction.set(key, (perFunction.get(key) ?? 0) + (perNode.get(node.id) ?? 0));
  }
  return [...perFunction].sort((a, b) => b[1] - a[1]);
}

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
const everyone = [userId, ...members];

// Setup for each workload, then the measured part as a closure.
let ops = 1;
let measured: () => Promise<unknown>;
switch (workload) {
  case "scratch":
    measured = async () => {
      await peer.claimMissing(members);
      await peer.share(room, everyone);
    };
    break;
  case "share":
    await peer.claimMissing(members);
    await peer.share(room, everyone);
    ops = 5;
    measured = async () => {
      for (let i = 0; i < ops; i++) {
        await peer.discard(room);
        await peer.share(room, everyone);
      }
    };
    break;
  case "encrypt":
    await peer.claimMissing(members);
    await peer.share(room, everyone);
    ops = Math.max(2000, Math.round(5000 * scale));
    measured = async () => {
      for (let i = 0; i < ops; i++) await peer.encrypt(room, `message ${i}`);
    };
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
    for (const f of fakes) {
      hs.deliver(userId, "PROFILE", [f.roomKeyTo(recipient, hs.claimOne(userId, "PROFILE"), room)]);
    }
    const sync = hs.syncFor(userId, "PROFILE");
    ops = fakes.length;
    if (workload === "todevice") {
      measured = () => peer.receiveSync(sync);
      break;
    }
    await peer.receiveSync(sync);
    const events: string[] = [];
    for (let r = 0; events.length < 10_000 * scale; r++)
      for (const f of fakes) events.push(JSON.stringify(f.roomEvent(room, `m${r}`)));
    for (const e of events.slice(0, 200)) await peer.decrypt(e, room);
    ops = events.length;
    measured = async () => {
      for (const e of events) await peer.decrypt(e, room);
    };
    break;
  }
  case "import": {
    const fixture = buildExportFile(Math.round(100_000 * scale), fakes);
    ops = fixture.count;
    measured = () => peer.importExportFile(fixture.file, EXPORT_PASSPHRASE);
    break;
  }
}

// The bench clock's per-call process.cpuUsage would show up in the profile.
peer.clock.perCall = false;
const profiling = process.env.KEYROOM_PROFILE !== "off";
const session = new Session();
if (profiling) {
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
}
const t0 = performance.now();
const cpu0 = process.cpuUsage();
await measured();
const cpu = process.cpuUsage(cpu0);
const ms = performance.now() - t0;
const cpuMs = (cpu.user + cpu.system) / 1000;
const summary =
  `${workload}${useSqlite ? " (sqlite)" : ""}: ${ops} ops, ${ms.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU ` +
  `(${((cpuMs * 1000) / ops).toFixed(1)} µs CPU per op)`;
if (!profiling) {
  console.log(summary);
  await peer.close();
  rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}
const { profile } = (await session.post("Profiler.stop")) as { profile: Profile };
session.disconnect();

const name = `keyroom-e2ee-${workload}${useSqlite ? "-sqlite" : ""}.cpuprofile`;
const out = join(tmpdir(), name);
writeFileSync(out, JSON.stringify(profile));
console.log(`${summary}; profile: ${out}`);
// Samples are taken on wall time; scaling each share by the CPU time per operation gives CPU µs.
const times = selfTimes(profile);
const total = times.reduce((a, [, t]) => a + t, 0);
const cpuPerOp = (cpuMs * 1000) / ops;
for (const [fn, t] of times.slice(0, 25)) {
  const share = t / total;
  console.log(
    `${(100 * share).toFixed(1).padStart(5)}%  ≈${(share * cpuPerOp).toFixed(1).padStart(7)} µs CPU/op  ${fn}`,
  );
}
await peer.close();
rmSync(tmp, { recursive: true, force: true });
