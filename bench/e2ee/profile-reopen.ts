// Profiles Keyroom decrypting right after a SQLite store reopen: `sessions` imported sessions, the
// store and machine reopened, then one event per session (every session read from disk).
//   node --conditions=source --import tsx bench/e2ee/profile-reopen.ts [sessions]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteCryptoStore } from "../../src/store/index.ts";
import { cpuMs } from "../stats.ts";
import { makeFakeDevices } from "./fake-devices.ts";
import { BenchHomeserver } from "./homeserver.ts";
import { KeyroomPeer } from "./peers.ts";
import { rotationFixture } from "./rotation.ts";

const sessions = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), "keyroom-profile-reopen-"));
const open = () => SqliteCryptoStore.open({ directory: dir, userId: "@p:bench.test", deviceId: "P" });
try {
  const hs = new BenchHomeserver();
  const fakes = makeFakeDevices(50, 4);
  for (const f of fakes) hs.addFakeDevice(f, 1);
  const peer = await KeyroomPeer.create(hs, await open(), "@p:bench.test", "P");
  await peer.track([...new Set(fakes.map((f) => f.userId))]);
  const fixture = rotationFixture(sessions, sessions * 2, fakes, "!r:bench.test");
  await peer.importEntries(fixture.entries);
  await peer.reopen(open);
  const events = fixture.events.slice(0, sessions);
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  peer.clock.perCall = false;
  const c0 = cpuMs();
  for (const e of events) await peer.decrypt(e.json, e.roomId);
  const cpu = cpuMs() - c0;
  const { profile } = await session.post("Profiler.stop");
  const file = join(tmpdir(), "keyroom-reopen.cpuprofile");
  writeFileSync(file, JSON.stringify(profile));
  console.log(
    `${sessions} first decrypts after reopen: ${((cpu * 1000) / sessions).toFixed(1)} µs CPU each; ${file}`,
  );
  await peer.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
