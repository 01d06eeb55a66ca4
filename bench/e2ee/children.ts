// The E2EE workloads that run in fresh child processes: the import of an export file and the RSS of
// inbound sessions held (each peer in its own process, alternating, repeated), and the open of a
// full SQLite store.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ExportFixture } from "./export-file.ts";
import type { RoomEventJson } from "./fake-devices.ts";
import type { ImportChildReport } from "./import-child.ts";
import type { MemoryChildReport } from "./memory.ts";
import type { Series, Side } from "./rows.ts";
import type { StoreOpenReport } from "./store-open.ts";
import { check } from "./workloads.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

function runChild(args: string[], nodeFlags: string[] = []): string {
  const r = spawnSync(process.execPath, [...nodeFlags, "--conditions=source", "--import", "tsx", ...args], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`${args[0]} failed:\n${r.stderr}`);
  return r.stdout.trim().split("\n").at(-1) ?? "";
}

function push<T>(to: Partial<Record<Side, T[]>>, side: Side, value: T): void {
  const list = to[side] ?? [];
  list.push(value);
  to[side] = list;
}

export interface ImportSeries {
  /** Import of the decrypted entries, ms per repetition. */
  entries: Series;
  /** File decryption + import, ms per repetition. */
  total: Series;
  /** Peak of the processes' RSS after the import, MB. */
  rssMb: Partial<Record<Side, number[]>>;
  fileCpuMs: number[];
  /** The SQLite store of the last SQLite import (kept for the store-open workload): user @import, device IMPORT. */
  sqliteStoreDir: string | undefined;
}

/** `reps` rounds of one fresh process per side (the order flipping every round). */
export function importInChildren(
  fixture: ExportFixture,
  tmp: string,
  reps: number,
  sides: Side[],
): ImportSeries {
  const fixtureFile = join(tmp, "import-fixture.json");
  writeFileSync(fixtureFile, JSON.stringify(fixture));
  const out: ImportSeries = {
    entries: { cpu: {}, wall: {} },
    total: { cpu: {}, wall: {} },
    rssMb: {},
    fileCpuMs: [],
    sqliteStoreDir: undefined,
  };
  for (let rep = 0; rep < reps; rep++) {
    for (const side of rep % 2 === 0 ? sides : [...sides].reverse()) {
      const dir = mkdtempSync(join(tmp, `import-${side}-`));
      const keep = side === "sqlite" && rep === reps - 1;
      try {
        const r = JSON.parse(
          runChild(["bench/e2ee/import-child.ts", side, fixtureFile, dir]),
        ) as ImportChildReport;
        check(r.imported === fixture.count, `${side} imported ${r.imported} of ${fixture.count} keys`);
        check(r.probeOk, `${side} could not decrypt with an imported key`);
        const file = r.fileCpuMs ?? 0;
        push(out.entries.cpu, side, r.importCpuMs);
        push(out.entries.wall, side, r.importWallMs);
        push(out.total.cpu, side, file + r.importCpuMs);
        push(out.total.wall, side, file + r.importWallMs);
        push(out.rssMb, side, r.rssMb);
        if (side !== "wasm") out.fileCpuMs.push(file);
        if (keep) out.sqliteStoreDir = join(dir, "store");
      } finally {
        if (!keep) rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return out;
}

/** Opens the store in a fresh process `reps` times; each decrypts the probe event once. */
export function storeOpenInChildren(
  directory: string,
  userId: string,
  deviceId: string,
  probe: RoomEventJson,
  reps: number,
): StoreOpenReport[] {
  const eventFile = join(directory, "..", "probe-event.json");
  writeFileSync(eventFile, JSON.stringify(probe));
  const out: StoreOpenReport[] = [];
  for (let i = 0; i < reps; i++) {
    out.push(
      JSON.parse(
        runChild(["bench/e2ee/store-open.ts", directory, userId, deviceId, eventFile]),
      ) as StoreOpenReport,
    );
  }
  return out;
}

/**
 * `reps` rounds of one fresh process per side (the order flipping every round), each taking in the
 * sessions of the fixture in `fixtureDir` (bench/e2ee/memory.ts) and reading its RSS at every size.
 */
export function sessionMemoryInChildren(
  fixtureDir: string,
  tmp: string,
  reps: number,
  sides: Side[],
): Partial<Record<Side, MemoryChildReport[]>> {
  const out: Partial<Record<Side, MemoryChildReport[]>> = {};
  for (let rep = 0; rep < reps; rep++) {
    for (const side of rep % 2 === 0 ? sides : [...sides].reverse()) {
      const dir = mkdtempSync(join(tmp, `memory-${side}-`));
      try {
        const r = JSON.parse(
          runChild(["bench/e2ee/memory-child.ts", side, fixtureDir, dir], ["--expose-gc"]),
        ) as MemoryChildReport;
        check(
          r.samples > 0 && r.heldSamples === r.samples,
          `${side} held ${r.heldSamples} of ${r.samples} sampled sessions`,
        );
        push(out, side, r);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return out;
}
