// The E2EE benchmark: Keyroom's `OlmMachine` (on its SQLite store, the headline, and on memory) and
// matrix-sdk-crypto-wasm's (the engine inside matrix-js-sdk) on the same workloads, against one
// in-process homeserver, in one process with alternating batches (bench/stats.ts); the import in
// fresh child processes.
//
// KEYROOM_BENCH_SCALE (default 1) scales every count (0.05 for --quick); absolute-time targets
// scale with it. KEYROOM_BENCH_QUICK=1: fewer rounds per repetition (still 5 repetitions).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { MemoryCryptoStore, SqliteCryptoStore } from "../../src/store/index.ts";
import { loadVodozemac } from "../../test/support/vodozemac.ts";
import { cpuMs, type MachineInfo, machineInfo, spread } from "../stats.ts";
import { importInChildren, sessionMemoryInChildren, storeOpenInChildren } from "./children.ts";
import { buildExportFile } from "./export-file.ts";
import { type FakeDevice, makeFakeDevices, type Recipient } from "./fake-devices.ts";
import { BenchHomeserver } from "./homeserver.ts";
import { memoryRow, writeMemoryFixture } from "./memory.ts";
import { KeyroomPeer, type MachineUnderTest, WasmPeer } from "./peers.ts";
import { rotationFixture, type TimelineEvent } from "./rotation.ts";
import { type E2eeRow, row, type Series, type Side } from "./rows.ts";
import {
  alternateMachines,
  check,
  DECRYPT_PAGE_EVENTS,
  decryptWork,
  type Machines,
  selfTimed,
} from "./workloads.ts";

export type { E2eeRow, E2eeTarget } from "./rows.ts";

export interface E2eeBenchReport {
  machine: MachineInfo;
  scale: number;
  reps: number;
  counts: {
    devices: number;
    users: number;
    events: number;
    encryptEvents: number;
    importKeys: number;
    rotationSessions: number;
    /** Inbound sessions each process of the memory row takes in, by the end. */
    memorySessions?: number;
  };
  rows: E2eeRow[];
  durationMs: number;
}

const REPS = 5;
/** The memory row's sizes: sessions are taken in by chunks, RSS read after each. */
const MEMORY_CHUNKS = 8;
/** One session in this many is a real one whose events are decrypted (the others only imported). */
const MEMORY_SAMPLE_EVERY = 100;

function recipient(hs: BenchHomeserver, m: MachineUnderTest): Recipient {
  const keys = hs.keysOf(m.userId, m.deviceId).keys;
  const curve25519 = keys[`curve25519:${m.deviceId}`];
  const ed25519 = keys[`ed25519:${m.deviceId}`];
  if (curve25519 === undefined || ed25519 === undefined) throw new Error("device keys incomplete");
  return { userId: m.userId, curve25519, ed25519 };
}

/** Each fake device sends `m` its room key for `roomId` over a new Olm session (one-time key or fallback). */
function sendRoomKeys(
  hs: BenchHomeserver,
  fakes: readonly FakeDevice[],
  m: MachineUnderTest,
  roomId: string,
) {
  const to = recipient(hs, m);
  for (const f of fakes) {
    const key = hs.claimOne(m.userId, m.deviceId);
    hs.deliver(m.userId, m.deviceId, [f.roomKeyTo(to, key, roomId)]);
  }
}

/** A timeline of `count` events from `senders` in turn, in `roomId` (whose keys they sent). */
function timeline(senders: readonly FakeDevice[], roomId: string, count: number): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  for (let round = 0; out.length < count; round++) {
    for (const f of senders) {
      if (out.length >= count) break;
      const body = `message ${round} from ${f.userId} ${f.deviceId}: the quick brown fox jumps over the lazy dog`;
      out.push({ json: JSON.stringify(f.roomEvent(roomId, body)), roomId, body });
    }
  }
  return out;
}

export interface E2eeBenchOptions {
  scale?: number;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

export async function runE2eeBench(options: E2eeBenchOptions = {}): Promise<E2eeBenchReport> {
  const started = Date.now();
  const machine = machineInfo();
  const scale = options.scale ?? Number(process.env.KEYROOM_BENCH_SCALE ?? 1);
  if (!(scale > 0 && scale <= 10)) throw new Error("KEYROOM_BENCH_SCALE must be in (0, 10]");
  const quick = process.env.KEYROOM_BENCH_QUICK === "1";
  const write = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (line: string) =>
    write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const perUser = 4;
  const users = Math.max(1, Math.round((1000 * scale) / perUser));
  const devices = users * perUser;
  /** Events a decryption batch: the same number for all decryption workloads. */
  const decryptBatch = Math.max(100, Math.round(500 * scale));
  const encryptBatch = Math.max(20, Math.round(300 * scale));
  const importKeys = Math.max(1000, Math.round(100_000 * scale));
  const rotationSessions = Math.max(200, Math.round(5000 * scale));
  const memoryChunk = Math.max(250, Math.round(2000 * scale));
  const rounds = quick ? 2 : 4;
  const rows: E2eeRow[] = [];
  const tmp = mkdtempSync(join(tmpdir(), "keyroom-e2ee-bench-"));
  const sqliteDir = join(tmp, "machine");
  const sqliteUser = "@keyroom-sqlite:bench.test";
  const openSqlite = () =>
    SqliteCryptoStore.open({ directory: sqliteDir, userId: sqliteUser, deviceId: "KEYROOMSQL" });

  try {
    const wasm = await loadVodozemac();
    log(`setup: ${devices} fake devices of ${users} users`);
    const hs = new BenchHomeserver();
    const fakes = makeFakeDevices(users, perUser);
    // Three one-time keys each: one for each machine's claim.
    for (const f of fakes) hs.addFakeDevice(f, 3);
    const memberIds = [...new Set(fakes.map((f) => f.userId))];

    const sqlite = await KeyroomPeer.create(hs, await openSqlite(), sqliteUser, "KEYROOMSQL");
    const memory = await KeyroomPeer.create(
      hs,
      await MemoryCryptoStore.open({ userId: "@keyroom:bench.test", deviceId: "KEYROOM" }),
      "@keyroom:bench.test",
      "KEYROOM",
    );
    const rust = await WasmPeer.create(wasm, hs, "@rust:bench.test", "RUST");
    const all: Machines = { sqlite, wasm: rust, memory };

    // Device tracking and the first share happen once per machine (n = 1).
    const once: Series = { cpu: {}, wall: {} };
    const scratch: Series = { cpu: {}, wall: {} };
    const room = "!big:bench.test";
    for (const [side, m] of Object.entries(all) as [Side, MachineUnderTest][]) {
      const t = await selfTimed(m, () => m.track(memberIds));
      once.cpu[side] = [t.cpuMs];
      once.wall[side] = [t.wallMs];
      let claimed = 0;
      let sent = 0;
      const s = await selfTimed(m, async () => {
        claimed = await m.claimMissing(memberIds);
        sent = await m.share(room, [m.userId, ...memberIds]);
      });
      check(claimed === devices && sent === devices, `${m.name}: ${claimed} claims, ${sent} messages`);
      scratch.cpu[side] = [s.cpuMs];
      scratch.wall[side] = [s.wallMs];
    }
    rows.push(
      row("keysQuery", `process /keys/query of ${devices} devices (ms, once)`, "ms", once),
      row(
        "shareScratch",
        `share room key, ${devices} devices, from scratch: claim + Olm sessions (ms, once)`,
        "ms",
        scratch,
        { kind: "ratio", min: 2 },
      ),
    );

    log("1. room key sharing, Olm sessions established");
    const share = await alternateMachines(all, {
      reps: REPS,
      rounds: 1,
      batch: 1,
      unit: "ms",
      selfTimed: true,
      run: async (_side, m) =>
        selfTimed(m, async () => {
          await m.discard(room);
          const again = await m.claimMissing(memberIds);
          const resent = await m.share(room, [m.userId, ...memberIds]);
          check(again === 0 && resent === devices, `${m.name} re-share: ${again} claims, ${resent} messages`);
        }),
    });
    rows.push(
      row("shareEstablished", `share room key, ${devices} devices, Olm sessions exist (ms)`, "ms", share, {
        kind: "ratio",
        min: 2,
      }),
    );

    log("   encryption");
    let sent = 0;
    const encrypt = await alternateMachines(all, {
      reps: REPS,
      rounds,
      batch: encryptBatch,
      unit: "ops/s",
      run: async (_side, m, ops) => {
        for (let i = 0; i < ops; i++) await m.encrypt(room, `message ${sent++} of the encryption run`);
        return undefined;
      },
    });
    rows.push(
      row(
        "encrypt",
        "encrypt room events, steady state (events/s)",
        "ops/s",
        encrypt,
        { kind: "ratio", min: 2 },
        `content object in, event JSON out on both; ${encryptBatch} events a batch, the first batch (cold) apart`,
      ),
    );

    log("2. to-device room keys");
    const keysRound: Partial<Record<Side, number>> = {};
    const toDevice = await alternateMachines(all, {
      reps: REPS,
      rounds: 1,
      batch: 1,
      unit: "ms",
      selfTimed: true,
      run: async (side, m) => {
        const n = keysRound[side] ?? 0;
        keysRound[side] = n + 1;
        const roomId = `!keys${n}:bench.test`;
        // A first, empty sync tells the machine its key counts, so it publishes a fallback key.
        await m.receiveSync(hs.syncFor(m.userId, m.deviceId));
        sendRoomKeys(hs, fakes, m, roomId);
        const sync = hs.syncFor(m.userId, m.deviceId);
        let decrypted = 0;
        const t = await selfTimed(m, async () => {
          decrypted = await m.receiveSync(sync);
        });
        check(decrypted === devices, `${m.name} decrypted ${decrypted} of ${devices} to-device room keys`);
        return t;
      },
    });
    rows.push(
      row(
        "toDevice",
        `one sync with ${devices} encrypted m.room_key (ms)`,
        "ms",
        toDevice,
        { kind: "ratio", min: 2 },
        "new Olm sessions (pre-key messages on the fallback key), then the requests it asks for",
      ),
    );

    // 3. Decryption. Every machine got the keys of "!keys0" in the first to-device round. Every
    // event is decrypted once by each machine (new message indexes all along, as a client reads a
    // live timeline): a cold batch, then REPS repetitions of `rounds` batches.
    const keysRoom = "!keys0:bench.test";
    const decryptRounds = 2;
    const batchesPerSide = 1 + REPS * decryptRounds;
    const decryptRows = async (
      id: string,
      label: string,
      events: readonly TimelineEvent[],
      machines: Machines,
      note: string,
      paged = false,
    ) => {
      const wrong: string[] = [];
      const s = await alternateMachines(machines, {
        reps: REPS,
        rounds: decryptRounds,
        batch: Math.floor(events.length / batchesPerSide),
        unit: "ops/s",
        run: decryptWork(events, wrong, { paged }),
      });
      check(wrong.length === 0, `events decrypted wrongly: ${wrong.slice(0, 5).join(", ")}`);
      rows.push(row(id, label, "ops/s", s, { kind: "ratio", min: 4 }, note));
    };
    log("3. room event decryption: one sender");
    await decryptRows(
      "decryptOneSender",
      "decrypt, one sender (events/s)",
      timeline(fakes.slice(0, 1), keysRoom, decryptBatch * batchesPerSide),
      all,
      "one Megolm session, consecutive indexes",
    );
    log(`   ${devices} sessions`);
    await decryptRows(
      "decryptSessions",
      `decrypt, ${devices} sessions interleaved (events/s)`,
      timeline(fakes, keysRoom, decryptBatch * batchesPerSide),
      all,
      "every sender in turn; event JSON text in, decrypted event object out on both",
    );
    log(`   ${rotationSessions} sessions in rotation (import, untimed)`);
    const rotationRoom = "!rotation:bench.test";
    const rotation = rotationFixture(rotationSessions, decryptBatch * batchesPerSide, fakes, rotationRoom);
    for (const m of Object.values(all)) {
      const n = await m.importEntries(rotation.entries);
      check(n === rotationSessions, `${m.name} imported ${n} of ${rotationSessions} rotation sessions`);
    }
    await decryptRows(
      "decryptRotation",
      `decrypt, ${rotationSessions} sessions in rotation (events/s)`,
      rotation.events,
      all,
      "each event from the next session in turn (imported keys): no session is used again before all others; " +
        `read as history: Keyroom in pages of ${DECRYPT_PAGE_EVENTS} events (tryDecryptRoomEvents), crypto-wasm one by one (it has no batch call)`,
      true,
    );

    log("   after a store reopen (SQLite)");
    const reopened: Series = { cpu: { sqlite: [], wasm: [] }, wall: { sqlite: [], wasm: [] } };
    const wrong: string[] = [];
    // Three events per session after each reopen: each session is read from disk once, then used.
    const reopenBatch = 3 * decryptBatch;
    const afterReopen = timeline(fakes, keysRoom, reopenBatch * REPS);
    // The first sync after a restart: a room's timeline at once (Keyroom's client decrypts it in
    // one tryDecryptRoomEvents call), crypto-wasm one by one.
    const work = decryptWork(afterReopen, wrong, { paged: true });
    for (let rep = 0; rep < REPS; rep++) {
      await sqlite.reopen(openSqlite);
      // The next events of the timeline right after the reopen, the two machines alternating in halves.
      const half = Math.floor(reopenBatch / 2);
      const sum = { sqlite: { cpu: 0, wall: 0 }, wasm: { cpu: 0, wall: 0 } };
      for (const side of ["sqlite", "wasm", "wasm", "sqlite"] as const) {
        const m = side === "sqlite" ? sqlite : rust;
        const c0 = cpuMs();
        const t0 = performance.now();
        m.clock.perCall = false;
        await work(side, m, half);
        m.clock.perCall = true;
        sum[side].cpu += cpuMs() - c0;
        sum[side].wall += performance.now() - t0;
      }
      for (const side of ["sqlite", "wasm"] as const) {
        reopened.cpu[side]?.push((half * 2000) / sum[side].cpu);
        reopened.wall[side]?.push((half * 2000) / sum[side].wall);
      }
    }
    check(wrong.length === 0, `events decrypted wrongly after reopen: ${wrong.slice(0, 5).join(", ")}`);
    rows.push(
      row(
        "decryptReopened",
        `decrypt right after a SQLite store reopen, ${devices} sessions (events/s)`,
        "ops/s",
        reopened,
        { kind: "ratio", min: 4 },
        `the next ${reopenBatch} events right after Keyroom closed and reopened its store and machine (every ` +
          "session read from disk again), against crypto-wasm on the same events, its sessions in memory (flatters crypto-wasm); " +
          `as a first sync's room timelines: Keyroom in calls of ${DECRYPT_PAGE_EVENTS} events (tryDecryptRoomEvents), crypto-wasm one by one`,
      ),
    );
    for (const m of Object.values(all)) await m.close();

    log(`4. import ${importKeys} room keys, each peer in a fresh process, ${REPS} times`);
    const fixture = buildExportFile(importKeys, fakes);
    const imports = importInChildren(fixture, tmp, quick ? 3 : REPS, ["sqlite", "wasm", "memory"]);
    const fileMs = spread(imports.fileCpuMs).median;
    rows.push(
      row(
        "importEntries",
        `import ${importKeys} decrypted export entries (ms)`,
        "ms",
        imports.entries,
        undefined,
        "the same entry objects into both: Keyroom's importRoomKeys, crypto-wasm's JSON.stringify + importExportedRoomKeys",
      ),
      row(
        "import",
        `import ${importKeys} room keys from an export file: file + import (ms)`,
        "ms",
        imports.total,
        // 5 s at full scale; smaller runs scale the import part but not the file's fixed PBKDF2 cost.
        { kind: "maxMs", value: 5000 * scale + (1 - scale) * fileMs },
        `file decryption (PBKDF2-SHA-512, 500 000 rounds, then AES-CTR + HMAC, same code on both): ${fileMs.toFixed(0)} ms; ` +
          "target on SQLite CPU time, wall time beside it",
      ),
      {
        id: "importRss",
        label: `RSS after importing ${importKeys} keys (MB)`,
        unit: "MB",
        sqlite: spread(imports.rssMb.sqlite ?? []),
        memory: spread(imports.rssMb.memory ?? []),
        wasm: spread(imports.rssMb.wasm ?? []),
        note: "whole process, Node + tsx + modules included",
      },
    );

    log("5. store open (fresh processes)");
    const storeDir = imports.sqliteStoreDir;
    if (storeDir === undefined) throw new Error("no SQLite import store kept");
    const opens = storeOpenInChildren(
      storeDir,
      "@import:bench.test",
      "IMPORT",
      fixture.probe,
      quick ? 3 : REPS,
    );
    for (const o of opens)
      check(o.body === fixture.probeBody, "the reopened store did not decrypt the probe");
    rows.push(
      row(
        "storeOpen",
        `open SQLite store with ${opens[0]?.inboundSessions} inbound sessions, to first decrypt (ms)`,
        "ms",
        {
          cpu: { sqlite: opens.map((o) => o.firstDecryptCpuMs) },
          wall: { sqlite: opens.map((o) => o.firstDecryptMs) },
        },
        { kind: "maxMs", value: 300 },
      ),
      {
        id: "storeRss",
        label: "RSS of that process after the first decrypt (MB)",
        unit: "MB",
        sqlite: spread(opens.map((o) => o.rssMb)),
        target: { kind: "maxMb", value: 150 },
        pass: spread(opens.map((o) => o.rssMb)).median < 150,
        note: `of which Node + tsx + modules before the open: ${spread(opens.map((o) => o.baselineRssMb)).median.toFixed(0)} MB`,
      },
    );

    const memorySessions = memoryChunk * MEMORY_CHUNKS;
    log(`6. RSS of ${memorySessions} inbound sessions held, each peer in a fresh process, ${REPS} times`);
    const memoryDir = join(tmp, "memory-fixture");
    const manifest = writeMemoryFixture(memoryDir, memoryChunk, MEMORY_CHUNKS, MEMORY_SAMPLE_EVERY, fakes);
    const held = sessionMemoryInChildren(memoryDir, tmp, quick ? 3 : REPS, ["sqlite", "wasm", "memory"]);
    rows.push(memoryRow(held, manifest, MEMORY_SAMPLE_EVERY));

    return {
      machine,
      scale,
      reps: REPS,
      counts: {
        devices,
        users,
        events: decryptBatch * batchesPerSide,
        encryptEvents: encryptBatch * rounds * REPS,
        importKeys,
        rotationSessions,
        memorySessions,
      },
      rows,
      durationMs: Date.now() - started,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
