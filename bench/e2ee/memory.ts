// The E2EE benchmark's memory row: RSS growth per 1 000 inbound Megolm sessions held, each machine
// in fresh processes (bench/e2ee/memory-child.ts, run by children.ts), the sides alternating. Each process takes in the
// same sessions chunk by chunk and reads its RSS after a forced GC at every size; the growth is the
// least-squares slope over those sizes, so the process's fixed cost (Node, modules, the machine, the
// first chunk's warm-up) and the garbage of each chunk's input drop out.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OutboundGroupSession } from "../../src/crypto/megolm/index.ts";
import { type Spread, slope, spread } from "../stats.ts";
import { randomRoomKey } from "./export-file.ts";
import type { FakeDevice } from "./fake-devices.ts";
import { exportOf, megolmEvent, type TimelineEvent } from "./rotation.ts";
import type { E2eeRow, Side } from "./rows.ts";

/** What a child (memory-child.ts) reports: RSS at each size, and the sampled sessions still usable. */
export interface MemoryPoint {
  /** Sessions held. */
  sessions: number;
  rssMb: number;
  /** V8's heap in use (JS objects; crypto-wasm's sessions are not in it). */
  heapUsedMb: number;
}

export interface MemoryChildReport {
  side: string;
  /** Before the first chunk (machine open, nothing imported). */
  empty: MemoryPoint;
  /** After each chunk. */
  points: MemoryPoint[];
  /** Sampled sessions whose second event decrypted after the last point. */
  heldSamples: number;
  samples: number;
}

export interface MemoryFixtureManifest {
  chunkSize: number;
  chunks: number;
}

/** A sampled session's two events: the first decrypted right after its chunk, the second at the end. */
export interface MemorySample {
  first: TimelineEvent;
  second: TimelineEvent;
}

/** Rooms the sessions are spread over (as in the import's export file). */
const ROOMS = 500;

/**
 * Writes `chunks` files of `chunkSize` export entries each into `dir`, one session in `sampleEvery`
 * a real one with two events to decrypt (the others valid sessions nobody can encrypt with).
 */
export function writeMemoryFixture(
  dir: string,
  chunkSize: number,
  chunks: number,
  sampleEvery: number,
  senders: readonly FakeDevice[],
): MemoryFixtureManifest {
  mkdirSync(dir, { recursive: true });
  const samples: MemorySample[][] = [];
  for (let c = 0; c < chunks; c++) {
    const entries = [];
    const chunkSamples: MemorySample[] = [];
    for (let i = 0; i < chunkSize; i++) {
      const n = c * chunkSize + i;
      const from = senders[n % senders.length] as FakeDevice;
      const roomId = `!room${n % ROOMS}:bench.test`;
      if (n % sampleEvery !== 0) {
        entries.push(randomRoomKey(from, roomId));
        continue;
      }
      const session = OutboundGroupSession.create();
      entries.push(exportOf(session, from, roomId));
      chunkSamples.push({
        first: megolmEvent(session, from, roomId, `memory sample ${n}, first`, `$memory-${n}-0`),
        second: megolmEvent(session, from, roomId, `memory sample ${n}, second`, `$memory-${n}-1`),
      });
    }
    writeFileSync(join(dir, `chunk-${c}.json`), JSON.stringify(entries));
    samples.push(chunkSamples);
  }
  const manifest: MemoryFixtureManifest = { chunkSize, chunks };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  writeFileSync(join(dir, "samples.json"), JSON.stringify(samples));
  return manifest;
}

/**
 * MB of RSS per 1 000 sessions in one process: the slope over the points after the first chunk
 * (whose point also carries the process's warm-up: JIT, the first pages of each structure).
 */
export function growthPer1000(report: MemoryChildReport): number {
  const pts = report.points.slice(1);
  return (
    1000 *
    slope(
      pts.map((p) => p.sessions),
      pts.map((p) => p.rssMb),
    )
  );
}

/** The row: each side's growth per 1 000 sessions (median, min–max), ratios per repetition. */
export function memoryRow(
  reports: Partial<Record<Side, MemoryChildReport[]>>,
  manifest: MemoryFixtureManifest,
  sampleEvery: number,
): E2eeRow {
  const growth: Partial<Record<Side, number[]>> = {};
  for (const [side, list] of Object.entries(reports) as [Side, MemoryChildReport[]][]) {
    growth[side] = list.map(growthPer1000);
  }
  const per = (side: Side): Spread | undefined => {
    const g = growth[side];
    return g === undefined ? undefined : spread(g);
  };
  // MB: lower is better, so Keyroom's advantage is crypto-wasm's growth over Keyroom's.
  const advantage = (k: number[] | undefined): Spread | undefined => {
    const w = growth.wasm;
    if (k === undefined || w === undefined || k.length !== w.length) return undefined;
    return spread(k.map((x, i) => (w[i] as number) / x));
  };
  const first = manifest.chunkSize;
  const last = manifest.chunkSize * manifest.chunks;
  const emptyMb = (side: Side) => spread((reports[side] ?? []).map((r) => r.empty.rssMb)).median;
  const lastMb = (side: Side) =>
    spread((reports[side] ?? []).map((r) => r.points.at(-1)?.rssMb ?? Number.NaN)).median;
  const r: E2eeRow = {
    id: "sessionRss",
    label: "RSS growth per 1 000 inbound sessions held (MB)",
    unit: "MB",
    note:
      `fresh process per side and repetition (--expose-gc), sessions imported in chunks of ${first}; ` +
      `RSS after forced GC at every ${first} up to ${last}, the least-squares slope from ${2 * first} to ${last}; ` +
      `1 session in ${sampleEvery} decrypted after its chunk and again after the last point. ` +
      "Keyroom memory: MemoryCryptoStore (every session's record in memory); sqlite: SqliteCryptoStore with its " +
      "default caches (sessions on disk; its growth is SQLite's page cache, at most 32 MiB, and the unpickled-session " +
      "cache, at most 10 000, holding the decrypted samples); crypto-wasm: OlmMachine without a store (in memory). " +
      `RSS empty → at ${last}: sqlite ${emptyMb("sqlite").toFixed(0)} → ${lastMb("sqlite").toFixed(0)} MB, ` +
      `memory ${emptyMb("memory").toFixed(0)} → ${lastMb("memory").toFixed(0)} MB, ` +
      `crypto-wasm ${emptyMb("wasm").toFixed(0)} → ${lastMb("wasm").toFixed(0)} MB`,
  };
  for (const side of ["sqlite", "memory", "wasm"] as const) {
    const s = per(side);
    if (s !== undefined) r[side] = s;
  }
  const ratio = advantage(growth.sqlite);
  if (ratio !== undefined) r.ratio = ratio;
  const memoryRatio = advantage(growth.memory);
  if (memoryRatio !== undefined) r.memoryRatio = memoryRatio;
  return r;
}
