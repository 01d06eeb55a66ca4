// Keyroom alone on its SQLite store, at full size, in the three decryption workloads that exceed a
// cache or a warm store: where its CPU time per event goes, split by store call.
//   node --conditions=source --import tsx bench/e2ee/decrypt-cases.ts <case> [sessions] [--page N] [--events N] [--no-split]
// case: interleaved (1 000 senders' sessions, 10 events each, in turn), rotation (5 000 imported
// sessions, each event from the next one; 2 per session, or `--events N` in all: the bench's row
// has 5 500, nearly all a session's first), reopen (1 000 sessions used, then the store and machine
// reopened and 3 events each). Prints CPU µs per event, then each store method's share (the
// synchronous part of the call, where SQLite and the decryption at rest run). `--page N` decrypts N
// events a `tryDecryptRoomEvents` call (as the client does a room's sync timeline) instead of one
// `decryptRoomEvent` each; `--no-split` leaves the store calls unwrapped (the wrapper's own clock
// reads cost a few µs a call, more per event when there are more calls). KEYROOM_PROFILE=FILE writes
// a CPU profile of the measured part alone to FILE; KEYROOM_HEAP_PROFILE=FILE a sampled allocation
// profile of it (every 256 bytes, objects collected since included: what the part allocates).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoStore, SqliteCryptoStore } from "../../src/store/index.ts";
import { cpuMs } from "../stats.ts";
import { makeFakeDevices } from "./fake-devices.ts";
import { BenchHomeserver } from "./homeserver.ts";
import { KeyroomPeer } from "./peers.ts";
import { rotationFixture, type TimelineEvent } from "./rotation.ts";

const cases = ["interleaved", "rotation", "reopen"] as const;
type Case = (typeof cases)[number];
const which = process.argv[2] as Case;
if (!cases.includes(which)) throw new Error(`case must be one of ${cases.join(", ")}`);
const args = process.argv.slice(3);
const flag = (name: string) => args.indexOf(name);
const page = flag("--page") >= 0 ? Number(args[flag("--page") + 1]) : 0;
const eventCount = flag("--events") >= 0 ? Number(args[flag("--events") + 1]) : undefined;
const split = flag("--no-split") < 0;
const positional = args.filter(
  (a, i) => !a.startsWith("--") && args[i - 1] !== "--page" && args[i - 1] !== "--events",
);
const sessions = Number(positional[0] ?? (which === "rotation" ? 5000 : 1000));

/** CPU ms and calls per store method. */
const calls = new Map<string, { n: number; ms: number }>();
function counted(store: CryptoStore): CryptoStore {
  if (!split) return store;
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const c0 = cpuMs();
        const out = value.apply(target, args);
        const entry = calls.get(String(key)) ?? { n: 0, ms: 0 };
        entry.n++;
        entry.ms += cpuMs() - c0;
        calls.set(String(key), entry);
        return out;
      };
    },
  });
}

const dir = mkdtempSync(join(tmpdir(), "keyroom-decrypt-cases-"));
const userId = "@cases:bench.test";
const open = async () => counted(await SqliteCryptoStore.open({ directory: dir, userId, deviceId: "CASES" }));
try {
  const hs = new BenchHomeserver();
  const fakes = makeFakeDevices(Math.max(1, Math.round((which === "rotation" ? 200 : sessions) / 4)), 4);
  for (const f of fakes) hs.addFakeDevice(f, 1);
  const peer = await KeyroomPeer.create(hs, await open(), userId, "CASES");
  await peer.track([...new Set(fakes.map((f) => f.userId))]);
  const room = "!cases:bench.test";
  let events: TimelineEvent[] = [];
  if (which === "rotation") {
    const fixture = rotationFixture(sessions, eventCount ?? sessions * 2, fakes, room);
    await peer.importEntries(fixture.entries);
    events = fixture.events;
  } else {
    // Every fake device shares its session over Olm, then sends `rounds` events in turn.
    await peer.receiveSync(hs.syncFor(userId, "CASES"));
    const keys = hs.keysOf(userId, "CASES").keys;
    const to = { userId, curve25519: keys["curve25519:CASES"] ?? "", ed25519: keys["ed25519:CASES"] ?? "" };
    for (const f of fakes) hs.deliver(userId, "CASES", [f.roomKeyTo(to, hs.claimOne(userId, "CASES"), room)]);
    await peer.receiveSync(hs.syncFor(userId, "CASES"));
    const rounds = which === "reopen" ? 8 : 10;
    for (let r = 0; r < rounds; r++) {
      for (const f of fakes) {
        const body = `message ${r}: the quick brown fox jumps over the lazy dog`;
        events.push({ json: JSON.stringify(f.roomEvent(room, body)), roomId: room, body });
      }
    }
    if (which === "reopen") {
      // Used before the reopen (their replay records are stored), as in the bench's reopen row.
      for (const e of events.slice(0, 5 * fakes.length)) await peer.decrypt(e.json, e.roomId);
      events = events.slice(5 * fakes.length);
      await peer.reopen(open);
    }
  }
  peer.clock.perCall = false;
  calls.clear();
  const profileTo = process.env.KEYROOM_PROFILE;
  const inspector = new Session();
  if (profileTo !== undefined) {
    inspector.connect();
    await inspector.post("Profiler.enable");
    await inspector.post("Profiler.setSamplingInterval", { interval: 200 });
    await inspector.post("Profiler.start");
  }
  const heapTo = process.env.KEYROOM_HEAP_PROFILE;
  if (heapTo !== undefined) {
    inspector.connect();
    await inspector.post("HeapProfiler.enable");
    await inspector.post("HeapProfiler.startSampling", {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  }
  const c0 = cpuMs();
  let wrong = 0;
  if (page > 0) {
    for (let i = 0; i < events.length; i += page) {
      const slice = events.slice(i, i + page);
      const bodies = await peer.decryptBatch(slice);
      slice.forEach((e, j) => {
        if (bodies[j] !== e.body) wrong++;
      });
    }
  } else {
    for (const e of events) if ((await peer.decrypt(e.json, e.roomId)) !== e.body) wrong++;
  }
  const perEvent = ((cpuMs() - c0) * 1000) / events.length;
  if (profileTo !== undefined) {
    const { profile } = await inspector.post("Profiler.stop");
    inspector.disconnect();
    writeFileSync(profileTo, JSON.stringify(profile));
  }
  if (heapTo !== undefined) {
    const { profile } = await inspector.post("HeapProfiler.stopSampling");
    writeFileSync(heapTo, JSON.stringify(profile));
  }
  if (wrong > 0) throw new Error(`${wrong} events decrypted wrongly`);
  console.log(
    `${which}, ${sessions} sessions${page > 0 ? `, pages of ${page}` : ""}: ${events.length} events, ${perEvent.toFixed(1)} µs CPU per event`,
  );
  for (const [name, c] of [...calls].sort((a, b) => b[1].ms - a[1].ms)) {
    const share = ((c.ms * 1000) / events.length).toFixed(1);
    console.log(
      `  ${name}: ${c.n} calls, ${share} µs per event (${((c.ms * 1000) / c.n).toFixed(1)} µs a call)`,
    );
  }
  await peer.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
