/**
 * When a SQLite commit must reach the disk before `saveChanges` returns, and what to do at open
 * after a power loss may have dropped the commits that did not. The policy is explained in
 * docs/stores.md ("Durability").
 *
 * - Every commit reaches the OS (WAL), so a crashed or killed process loses nothing committed.
 * - Per-message commits (an outbound ratchet advance, a batch of replay records, a sync token whose
 *   response changed nothing else) are not synced to the disk (`synchronous = NORMAL`); every
 *   other commit is (`synchronous = FULL`), and its sync also covers every earlier commit in the WAL.
 * - The store records, durably, how many instances have it open (several processes may share it)
 *   and in which boot of the operating system. Opening a store still counted open, in another boot
 *   (or when the boot cannot be told), may follow a power loss that dropped ratchet advances whose
 *   messages had left: the outbound Megolm sessions are then discarded, so no message index is ever
 *   used twice (the next send shares a new session), and the stored sync token is cleared: it may
 *   be older than a client's own saved position, and a client sharing the store would take such a
 *   token for another process's progress (see `handleSyncUnit`). A killed process never closes, so
 *   its count stays: in the same boot that costs nothing; after a reboot it discards (safe).
 * - The boot is told by Linux's boot ID; elsewhere (macOS, Windows) by when it started, the wall
 *   clock less the uptime, within `BOOT_START_TOLERANCE_MS`. Where neither was recorded (a record
 *   from an older version), a discarding open keeps the count: the others may still be open.
 */
import { readFileSync } from "node:fs";
import { uptime } from "node:os";
import type Database from "better-sqlite3";

/** The meta key holding `OpenState`. */
export const OPEN_STATE_KEY = "open_state";

interface OpenState {
  /** Instances that opened the store and did not close it (killed ones included). */
  readonly opens: number;
  /** The operating system's boot ID when the store was opened; null where it cannot be read. */
  readonly bootId: string | null;
  /** When that boot started (ms, `currentBootStart`); null in records of older versions. */
  readonly bootStart: number | null;
}

/**
 * How far two readings of when this boot started may differ and still name one boot (on systems
 * without a boot ID). A reading moves with the wall clock: corrections within a boot stay under
 * this; one beyond it is taken for a reboot (the outbound sessions are discarded, which is safe,
 * and the instances counted open are taken for gone). A reboot after a power loss starts later
 * than the boot before it by at least that boot's uptime and the time the machine was off.
 */
export const BOOT_START_TOLERANCE_MS = 5 * 60_000;

/** When this boot of the operating system started, on the wall clock (ms). */
export function currentBootStart(): number {
  return Date.now() - uptime() * 1000;
}

/** Whether `last` was recorded in this boot: true, false, or undefined when it cannot be told. */
function sameBoot(last: OpenState, bootId: string | undefined, bootStart: number): boolean | undefined {
  if (bootId !== undefined) return last.bootId === bootId;
  if (last.bootStart === null) return undefined;
  return Math.abs(last.bootStart - bootStart) <= BOOT_START_TOLERANCE_MS;
}

/** This boot of the operating system (Linux); undefined elsewhere. */
export function currentBootId(): string | undefined {
  try {
    const id = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return id.length > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

function parseOpenState(text: string | undefined): OpenState | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as { open?: unknown; opens?: unknown; bootId?: unknown; bootStart?: unknown };
    const bootId = typeof v.bootId === "string" ? v.bootId : null;
    const bootStart = Number.isFinite(v.bootStart) ? (v.bootStart as number) : null;
    if (Number.isSafeInteger(v.opens) && (v.opens as number) >= 0)
      return { opens: v.opens as number, bootId, bootStart };
    // Written before stores could be shared: `open` alone.
    if (typeof v.open === "boolean") return { opens: v.open ? 1 : 0, bootId, bootStart };
    return undefined;
  } catch {
    return undefined;
  }
}

function readOpenState(db: Database.Database): OpenState | undefined {
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(OPEN_STATE_KEY) as
    | { value?: unknown }
    | undefined;
  return parseOpenState(typeof row?.value === "string" ? row.value : undefined);
}

function writeOpenState(db: Database.Database, state: OpenState): void {
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(
    OPEN_STATE_KEY,
    JSON.stringify(state),
  );
}

/**
 * Called at open, inside no transaction, with `synchronous = FULL`: discards the outbound Megolm
 * sessions and the sync token if an instance left the store open in what may be an earlier boot (then calls
 * `discarded`, in the same transaction), and counts this instance open in this boot, durably.
 * Returns whether it discarded.
 */
export function markOpen(
  db: Database.Database,
  bootId: string | undefined,
  discarded: () => void = () => {},
  bootStart = currentBootStart(),
): boolean {
  let mayHaveLost = false;
  db.transaction(() => {
    const last = readOpenState(db);
    const same = last === undefined ? undefined : sameBoot(last, bootId, bootStart);
    mayHaveLost = (last?.opens ?? 0) > 0 && same !== true;
    if (mayHaveLost) {
      // The sync token too: a lost token-only commit left it behind the clients' positions.
      db.exec(
        "DELETE FROM outbound_group_sessions; DELETE FROM outbound_group_session_sharing; " +
          "DELETE FROM meta WHERE key = 'next_batch';",
      );
      discarded();
    }
    // The instances counted were all of an earlier boot, and are gone. Where the boot cannot be
    // told they may still be open (and sending on reservations not yet on the disk): keep them.
    const stillOpen = mayHaveLost && same === false ? 0 : (last?.opens ?? 0);
    writeOpenState(db, { opens: stillOpen + 1, bootId: bootId ?? null, bootStart });
  }).immediate();
  return mayHaveLost;
}

/** Called at close with `synchronous = FULL`: the sync of this commit covers all before it. */
export function markClosed(db: Database.Database): void {
  db.transaction(() => {
    const last = readOpenState(db);
    const opens = Math.max(0, (last?.opens ?? 1) - 1);
    writeOpenState(db, {
      opens,
      bootId: last?.bootId ?? currentBootId() ?? null,
      bootStart: last?.bootStart ?? currentBootStart(),
    });
  }).immediate();
}
