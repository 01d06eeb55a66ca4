/**
 * The SQLite store's lease and generation (see `StoreLease` in `../store.ts`), kept as one JSON row
 * in `meta` and only ever read and written inside `BEGIN IMMEDIATE` transactions, so processes see
 * each other's changes in order.
 *
 * - `holder` / `expiresAt`: who leases the store, until when (ms since the epoch, this machine's
 *   clock: every process sharing a file runs on the machine that holds it). The holder names its
 *   boot and process (`<boot>:<pid>:<random>`): a lease whose process is gone in this boot (killed,
 *   crashed), or was of an earlier boot, is free at once rather than at its expiry. Were that ever
 *   wrong (another PID namespace on the same file), the fence below still refuses the old holder's
 *   writes.
 * - `generation`: raised by a save outside the lease and by the first save of each hold (see
 *   `raised`), in the save's own transaction: a holder that dies mid-hold has raised it if it
 *   wrote anything, and a rolled-back save raised nothing. Taking the lease does not raise it, so
 *   a hold that saved nothing costs the others no reload.
 *   An instance remembers the generation it last set or read; when the row says otherwise, someone
 *   else wrote in between, so the instance's memory is stale and its saves are refused until it
 *   takes the lease again (which reports the staleness, so the caller reloads).
 * - `raised`: the holder raised the generation in its current hold, and nobody else has read it
 *   since, so its further saves need not raise it again. Cleared by every take (a new hold) and
 *   by an instance that opens meanwhile (it records the generation, and must see the holder's
 *   later saves as a change).
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
  readonly raised: boolean;
}

const FREE: LeaseRow = { holder: null, expiresAt: 0, generation: 0, raised: false };

/** What `fence` raised the generation to, for `committed`; `leased`: under this instance's lease. */
export interface Fenced {
  readonly generation: number;
  readonly leased: boolean;
}

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

/**
 * True only when `holder` names a process that no longer exists: one of an earlier boot of this
 * machine (its expiry is no guide: the clock may have come back behind it), or one of this boot
 * that is gone.
 */
function holderDead(holder: string, bootId: string | undefined, alive: (pid: number) => boolean): boolean {
  const [boot, pid] = holder.split(":");
  if (bootId === undefined || boot === undefined || boot === "") return false;
  if (boot !== bootId) return true;
  const n = Number(pid);
  return Number.isSafeInteger(n) && n > 0 && n !== process.pid && !alive(n);
}

function parseLease(text: unknown): LeaseRow {
  if (typeof text !== "string") return FREE;
  try {
    const v = JSON.parse(text) as {
      holder?: unknown;
      expiresAt?: unknown;
      generation?: unknown;
      raised?: unknown;
    };
    const generation = Number.isSafeInteger(v.generation) ? (v.generation as number) : 0;
    const expiresAt = typeof v.expiresAt === "number" && Number.isFinite(v.expiresAt) ? v.expiresAt : 0;
    const holder = typeof v.holder === "string" ? v.holder : null;
    // Absent (a row written before it existed): the holder's next save raises the generation.
    return { holder, expiresAt, generation, raised: v.raised === true };
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
  /** The generation this instance last set or read (at open, or taking the lease). */
  #seen = 0;
  #holding = false;

  readonly #bootId: string | undefined;
  readonly #alive: (pid: number) => boolean;

  /** Call `open` (in an IMMEDIATE transaction) before anything else. */
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
  }

  #read(): LeaseRow {
    const row = this.#get.get(LEASE_KEY) as { value?: unknown } | undefined;
    return parseLease(row?.value);
  }

  #write(row: LeaseRow): void {
    this.#put.run(LEASE_KEY, JSON.stringify(row));
  }

  /**
   * Run inside an IMMEDIATE transaction, once, at open (before the caller reads anything it keeps):
   * records the generation. A holder that raised it may be saving more under it; clearing `raised`
   * makes its next save raise it again, so this instance sees that save as a change.
   */
  open(): void {
    const row = this.#read();
    this.#seen = row.generation;
    if (row.raised) this.#write({ ...row, raised: false });
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
    // The generation moved: someone else saved since this instance last set or read it.
    const stale = row.generation !== this.#seen;
    // Our own lease, still ours, nobody in between: extended, the same hold. Otherwise a new hold,
    // whose first save raises the generation (the last holder's `raised` was read by us now).
    const same = this.#holding && row.holder === this.#holder && !stale;
    this.#write({
      holder: this.#holder,
      expiresAt: now + durationMs,
      generation: row.generation,
      raised: same && row.raised,
    });
    this.#seen = row.generation;
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
    if (row.holder === this.#holder) this.#write({ ...row, holder: null, expiresAt: 0, raised: false });
  }

  /**
   * Run inside the save's IMMEDIATE transaction, before writing: refuses (STALE) when someone else
   * saved since this instance last set or read the generation, or holds the lease now. Raises the
   * generation, so every other instance knows it must reload, unless this hold raised it already
   * and nobody read it since. Returns what it raised it to, for `committed` once the transaction
   * has committed (a rolled-back save raised nothing and must not move this instance's view).
   */
  fence(): Fenced | undefined {
    const row = this.#read();
    if (row.generation !== this.#seen) {
      this.#holding = false;
      throw new StoreLockedError(this.#location, { code: "STALE" });
    }
    if (this.#holding && row.holder === this.#holder) {
      if (row.raised) return undefined;
      const generation = row.generation + 1;
      this.#write({ ...row, generation, raised: true });
      return { generation, leased: true };
    }
    if (
      row.holder !== null &&
      row.holder !== this.#holder &&
      row.expiresAt > this.#now() &&
      !holderDead(row.holder, this.#bootId, this.#alive)
    ) {
      // A live lease we did not take: not ours to write under.
      throw new StoreLockedError(this.#location, { code: "STALE" });
    }
    const generation = row.generation + 1;
    this.#write({ holder: null, expiresAt: 0, generation, raised: false });
    return { generation, leased: false };
  }

  committed(fenced: Fenced | undefined): void {
    if (fenced === undefined) return;
    this.#seen = fenced.generation;
    // A save outside the lease took the store for its transaction only.
    if (!fenced.leased) this.#holding = false;
  }

  /** Something outside the lease rewrote the store (open after a power loss): everyone reloads. */
  bump(): void {
    const row = this.#read();
    this.#write({ ...row, generation: row.generation + 1, raised: false });
  }
}
