/**
 * The SQLite store's lease and generation (see `StoreLease` in `../store.ts`), kept as one JSON row
 * in `meta` and only ever read and written inside `BEGIN IMMEDIATE` transactions, so processes see
 * each other's changes in order.
 *
 * - `holder` / `expiresAt`: who leases the store, until when (ms since the epoch, this machine's
 *   clock: every process sharing a file runs on the machine that holds it). The holder names its
 *   boot and process (`<boot>:<pid>:<random>`): a lease whose process is gone in this boot (killed,
 *   crashed) is free at once rather than at its expiry. Were that ever wrong (another PID namespace
 *   on the same file), the fence below still refuses the old holder's writes.
 * - `generation`: raised each time an instance takes the lease and each time one saves outside it.
 *   An instance remembers the generation it last set (or saw at open); when the row says otherwise,
 *   someone else took the store in between, so the instance's memory is stale and its saves are
 *   refused until it takes the lease again (which reports the staleness, so the caller reloads).
 */
import type Database from "better-sqlite3";
import { StoreLockedError } from "../errors.ts";
import type { LeaseGrant } from "../store.ts";

/** The meta key holding `LeaseRow`. */
export const LEASE_KEY = "lease";

interface LeaseRow {
  readonly holder: string | null;
  readonly expiresAt: number;
  readonly generation: number;
}

const FREE: LeaseRow = { holder: null, expiresAt: 0, generation: 0 };

/** Whether process `pid` exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: unknown }).code !== "ESRCH";
  }
}

/** A holder name for this process: `<boot>:<pid>:<random>` (the boot empty where it cannot be told). */
export function holderName(bootId: string | undefined, random: string): string {
  return `${bootId ?? ""}:${process.pid}:${random}`;
}

/** True only when `holder` names a process of this boot that no longer exists. */
function holderDead(holder: string, bootId: string | undefined, alive: (pid: number) => boolean): boolean {
  const [boot, pid] = holder.split(":");
  if (bootId === undefined || boot !== bootId) return false;
  const n = Number(pid);
  return Number.isSafeInteger(n) && n > 0 && n !== process.pid && !alive(n);
}

function parseLease(text: unknown): LeaseRow {
  if (typeof text !== "string") return FREE;
  try {
    const v = JSON.parse(text) as { holder?: unknown; expiresAt?: unknown; generation?: unknown };
    const generation = Number.isSafeInteger(v.generation) ? (v.generation as number) : 0;
    const expiresAt = typeof v.expiresAt === "number" && Number.isFinite(v.expiresAt) ? v.expiresAt : 0;
    return { holder: typeof v.holder === "string" ? v.holder : null, expiresAt, generation };
  } catch {
    return FREE;
  }
}

export class SqliteLease {
  readonly #holder: string;
  readonly #location: string;
  readonly #now: () => number;
  readonly #get: Database.Statement;
  readonly #put: Database.Statement;
  /** The generation this instance last set or saw at open. */
  #seen: number;
  #holding = false;

  readonly #bootId: string | undefined;
  readonly #alive: (pid: number) => boolean;

  constructor(
    db: Database.Database,
    holder: string,
    location: string,
    bootId: string | undefined,
    alive: (pid: number) => boolean = processAlive,
    now: () => number = Date.now,
  ) {
    this.#holder = holder;
    this.#location = location;
    this.#bootId = bootId;
    this.#alive = alive;
    this.#now = now;
    this.#get = db.prepare("SELECT value FROM meta WHERE key = ?");
    this.#put = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    this.#seen = this.#read().generation;
  }

  #read(): LeaseRow {
    const row = this.#get.get(LEASE_KEY) as { value?: unknown } | undefined;
    return parseLease(row?.value);
  }

  #write(row: LeaseRow): void {
    this.#put.run(LEASE_KEY, JSON.stringify(row));
  }

  /** Run inside an IMMEDIATE transaction. */
  acquire(durationMs: number): LeaseGrant | undefined {
    const row = this.#read();
    const now = this.#now();
    if (
      row.holder !== null &&
      row.holder !== this.#holder &&
      row.expiresAt > now &&
      !holderDead(row.holder, this.#bootId, this.#alive)
    ) {
      return undefined;
    }
    const stale = row.generation !== this.#seen;
    // Our own live lease, still ours: extended, not a new generation.
    const generation =
      this.#holding && row.holder === this.#holder && !stale ? row.generation : row.generation + 1;
    this.#write({ holder: this.#holder, expiresAt: now + durationMs, generation });
    this.#seen = generation;
    this.#holding = true;
    return { stale };
  }

  /** Run inside an IMMEDIATE transaction. */
  renew(durationMs: number): boolean {
    const row = this.#read();
    if (!this.#holding || row.holder !== this.#holder || row.generation !== this.#seen) {
      this.#holding = false;
      return false;
    }
    this.#write({ ...row, expiresAt: this.#now() + durationMs });
    return true;
  }

  /** Run inside an IMMEDIATE transaction. */
  release(): void {
    if (!this.#holding) return;
    this.#holding = false;
    const row = this.#read();
    if (row.holder === this.#holder) this.#write({ ...row, holder: null, expiresAt: 0 });
  }

  /**
   * Run inside the save's IMMEDIATE transaction, before writing: refuses (STALE) when someone else
   * took the store since this instance last did; a save outside the lease raises the generation so
   * every other instance knows it must reload. Returns that generation, for `committed` once the
   * transaction has committed (a rolled-back save must not move this instance's view).
   */
  fence(): number | undefined {
    const row = this.#read();
    if (row.generation !== this.#seen) {
      this.#holding = false;
      throw new StoreLockedError(this.#location, { code: "STALE" });
    }
    if (this.#holding && row.holder === this.#holder) return undefined;
    if (
      row.holder !== null &&
      row.holder !== this.#holder &&
      row.expiresAt > this.#now() &&
      !holderDead(row.holder, this.#bootId, this.#alive)
    ) {
      // A live lease we did not take (it was taken before we opened): not ours to write under.
      throw new StoreLockedError(this.#location, { code: "STALE" });
    }
    const generation = row.generation + 1;
    this.#write({ holder: null, expiresAt: 0, generation });
    return generation;
  }

  committed(generation: number | undefined): void {
    if (generation === undefined) return;
    this.#holding = false;
    this.#seen = generation;
  }

  /** Something outside the lease rewrote the store (open after a power loss): everyone reloads. */
  bump(): void {
    const row = this.#read();
    this.#seen = row.generation + 1;
    this.#write({ ...row, generation: this.#seen });
  }
}
