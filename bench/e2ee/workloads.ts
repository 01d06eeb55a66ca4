// The repeated E2EE workloads, each run on the machines in alternating batches (bench/stats.ts):
// Keyroom on SQLite, crypto-wasm and Keyroom on memory take turns, the order flipping every round.
import { alternate, type SelfTimed } from "../stats.ts";
import type { MachineUnderTest } from "./peers.ts";
import type { Series, Side } from "./rows.ts";

export type Machines = Partial<Record<Side, MachineUnderTest>>;

export function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`e2ee bench: ${message}`);
}

/** Runs `work` on the machine's own clock: only its machine calls count (not the fake server's). */
export async function selfTimed(m: MachineUnderTest, work: () => Promise<void>): Promise<SelfTimed> {
  m.clock.reset();
  await work();
  return { selfTimed: true, cpuMs: m.clock.cpuMs, wallMs: m.clock.wallMs };
}

export interface AlternateWork {
  reps: number;
  rounds: number;
  /** Operations per batch. */
  batch: number;
  /** Rates (operations per second) or times (ms per operation). */
  unit: "ops/s" | "ms";
  /** True when `run` returns its own timing (machine calls only, per-call clocks on). */
  selfTimed?: boolean;
  /** Runs `ops` operations on `m`. */
  run(side: Side, m: MachineUnderTest, ops: number): Promise<SelfTimed | undefined>;
}

/**
 * Alternating batches over the machines given; returns per-repetition series. Batches not timed
 * by the work itself are timed whole (with per-call clocks off).
 */
export async function alternateMachines(machines: Machines, w: AlternateWork): Promise<Series> {
  const sides = (Object.entries(machines) as [Side, MachineUnderTest][]).map(([side, m]) => ({
    name: side,
    run: async (ops: number) => {
      let own: SelfTimed | undefined;
      m.clock.perCall = w.selfTimed === true;
      try {
        own = await w.run(side, m, ops);
      } finally {
        m.clock.perCall = true;
      }
      return own;
    },
  }));
  const result = await alternate(sides, { reps: w.reps, rounds: w.rounds, batch: w.batch });
  const out: Series = { cpu: {}, wall: {}, cold: {} };
  const conv = (rate: number) => (w.unit === "ops/s" ? rate : 1000 / rate);
  for (const [side, r] of Object.entries(result) as [Side, (typeof result)[string]][]) {
    out.cpu[side] = r.cpuRates.map(conv);
    out.wall[side] = r.wallRates.map(conv);
    (out.cold as Partial<Record<Side, number>>)[side] = conv(r.cold);
  }
  return out;
}

/**
 * Events a page when a workload reads history or a sync's room timeline (`decryptWork`'s `paged`):
 * Element asks for 20 events a page of history, and a sync's timeline for a room is of that order.
 */
export const DECRYPT_PAGE_EVENTS = 20;

/**
 * Decrypts `events` (JSON text) in turns, each side walking the list from where it stopped. With
 * `paged`, a machine that has a batch call (Keyroom's `tryDecryptRoomEvents`, which its client uses
 * for a room's sync timeline) gets `DECRYPT_PAGE_EVENTS` events a call; crypto-wasm has none and
 * decrypts them one by one, as matrix-js-sdk does.
 */
export function decryptWork(
  events: readonly { json: string; roomId: string; body: string }[],
  wrong: string[],
  options: { paged?: boolean } = {},
): (side: Side, m: MachineUnderTest, ops: number) => Promise<undefined> {
  const cursor: Partial<Record<Side, number>> = {};
  return async (side, m, ops) => {
    let at = cursor[side] ?? 0;
    let done = 0;
    while (done < ops) {
      const page =
        m.decryptBatch !== undefined && options.paged === true
          ? Math.min(DECRYPT_PAGE_EVENTS, ops - done)
          : 1;
      const slice: { json: string; roomId: string; body: string }[] = [];
      for (let i = 0; i < page; i++) slice.push(events[(at + i) % events.length] as (typeof slice)[number]);
      const bodies =
        page === 1 || m.decryptBatch === undefined
          ? [
              await m.decrypt(
                (slice[0] as (typeof slice)[number]).json,
                (slice[0] as (typeof slice)[number]).roomId,
              ),
            ]
          : await m.decryptBatch(slice);
      slice.forEach((e, i) => {
        if (bodies[i] !== e.body) wrong.push(`${m.name} #${(at + i) % events.length}`);
      });
      at = (at + page) % events.length;
      done += page;
    }
    cursor[side] = at;
    return undefined;
  };
}
