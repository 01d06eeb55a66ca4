// One message in a large room (`npm run bench -- sync` runs it after the initial sync): the CPU of
// handling and saving a sync response that brings one timeline message to a joined room whose
// members are all in its state, SQLite client store, in a room of SMALL and of LARGE members. Such
// a response changes no state, so its cost must not grow with the room's state: before the stores
// kept state apart (8 December), each one wrote the room's whole snapshot (every m.room.member).
// The check: the large room's CPU per response at most MAX_GROWTH times the small one's.
//   node --conditions=source --import tsx bench/sync/large-room.ts [--quick]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteClientStore } from "../../src/client/client-store/node.ts";
import { offlineSyncLoop } from "../../src/client/test-support/offline-sync-loop.ts";
import type { ClientEvent, StateEvent, SyncResponse } from "../../src/wire/index.ts";
import { type Spread, spread } from "../stats.ts";

const QUICK = process.argv.includes("--quick") || process.env.KEYROOM_BENCH_QUICK === "1";
const SMALL = 10;
const LARGE = 5_000;
/** Responses timed per batch, and batches per room size (alternating, as bench/README.md says). */
const PER_BATCH = QUICK ? 20 : 100;
const BATCHES = QUICK ? 3 : 7;
/** The large room's CPU per message response, at most this many times the small room's. */
const MAX_GROWTH = 3;
const ROOM = "!large:bench";

const member = (i: number): StateEvent => ({
  event_id: `$m${i}`,
  type: "m.room.member",
  state_key: `@user${i}:bench`,
  sender: `@user${i}:bench`,
  origin_server_ts: 1,
  content: { membership: "join", displayname: `User number ${i}`, avatar_url: `mxc://bench/${i}` },
});

const message = (n: number): ClientEvent => ({
  event_id: `$msg${n}`,
  type: "m.room.message",
  sender: "@user1:bench",
  origin_server_ts: 2 + n,
  content: { msgtype: "m.text", body: `message ${n}` },
});

/** A client's sync loop on a fresh SQLite client store, in a joined room of `members` members. */
async function setUp(dir: string, members: number) {
  const store = await SqliteClientStore.open(join(dir, `client-${members}.sqlite3`));
  const loop = offlineSyncLoop(store, "@me:bench");
  const state = Array.from({ length: members }, (_, i) => member(i));
  await loop.feed({
    next_batch: "s0",
    rooms: { join: { [ROOM]: { state: { events: state }, timeline: { events: [] } } } },
  });
  let n = 0;
  /** Handles and saves `count` responses of one message each; returns their CPU in ms. */
  const batch = async (count: number): Promise<number> => {
    const before = process.cpuUsage();
    for (let i = 0; i < count; i++) {
      n++;
      const res: SyncResponse = {
        next_batch: `s${n}`,
        rooms: { join: { [ROOM]: { timeline: { events: [message(n)] } } } },
      };
      await loop.feed(res);
    }
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  };
  return { store, batch };
}

export interface LargeRoomReport {
  members: { small: number; large: number };
  /** CPU per one-message response (ms), per batch. */
  cpuMsPerResponse: { small: Spread; large: Spread };
  /** Large / small, per batch. */
  growth: Spread;
  maxGrowth: number;
}

const dir = await mkdtemp(join(tmpdir(), "keyroom-bench-large-room-"));
try {
  const small = await setUp(dir, SMALL);
  const large = await setUp(dir, LARGE);
  // Warm-up (JIT, statement caches), untimed.
  await small.batch(PER_BATCH);
  await large.batch(PER_BATCH);
  const smallMs: number[] = [];
  const largeMs: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const order = b % 2 === 0 ? [small, large] : [large, small];
    for (const side of order) {
      const ms = (await side.batch(PER_BATCH)) / PER_BATCH;
      (side === small ? smallMs : largeMs).push(ms);
    }
  }
  await small.store.close();
  await large.store.close();
  const report: LargeRoomReport = {
    members: { small: SMALL, large: LARGE },
    cpuMsPerResponse: { small: spread(smallMs), large: spread(largeMs) },
    growth: spread(largeMs.map((l, i) => l / (smallMs[i] ?? Number.NaN))),
    maxGrowth: MAX_GROWTH,
  };
  const f = (s: Spread) => `${s.median.toFixed(3)} ms (${s.min.toFixed(3)}–${s.max.toFixed(3)})`;
  console.log(`CPU per one-message response, room of ${SMALL} members: ${f(report.cpuMsPerResponse.small)}`);
  console.log(`CPU per one-message response, room of ${LARGE} members: ${f(report.cpuMsPerResponse.large)}`);
  console.log(`growth ${report.growth.median.toFixed(2)}× (at most ${MAX_GROWTH}×)`);
  console.log(JSON.stringify(report));
  if (!(report.growth.median <= MAX_GROWTH)) {
    console.error(`a one-message response costs ${report.growth.median.toFixed(1)}× more in the large room`);
    process.exitCode = 1;
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
