// A lock file beside a file store (Node has no portable `flock`): taken by creating it with
// O_EXCL, which one process at a time succeeds in, and given up by removing it. It names its holder
// (host, process ID, a random nonce), so a lock left by a process that died while holding it (a
// crash in the milliseconds of a write) is broken: at once when its process is gone on this host,
// else once it is `FILE_LOCK_STALE_MS` old. Breaking renames it away first and checks it moved the
// lock it judged stale, putting back one it did not (another breaker's new lock).
import { randomBytes } from "node:crypto";
import { link, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { ClientError } from "../errors.ts";

/**
 * A lock this old is broken whoever holds it: a holder keeps it only for one read and write of
 * the store's file, so one this old is a dead process's (whose process ID another took since, or
 * on another host), or one stopped (suspended) while holding it.
 */
export const FILE_LOCK_STALE_MS = 30_000;
/** How often a process waiting for the lock tries again. */
export const FILE_LOCK_POLL_MS = 10;
/** How long a process waits for a live holder's lock before failing the write (`STORE_FAILED`). */
export const FILE_LOCK_WAIT_MS = 60_000;

/** What a lock file says of its holder. */
interface Holder {
  host: string;
  pid: number;
  nonce: string;
}

/** Runs `fn` holding the lock file at `lockPath`. */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const nonce = randomBytes(12).toString("hex");
  await acquire(lockPath, nonce);
  try {
    return await fn();
  } finally {
    await release(lockPath, nonce);
  }
}

async function acquire(lockPath: string, nonce: string): Promise<void> {
  const me: Holder = { host: hostname(), pid: process.pid, nonce };
  const since = Date.now();
  for (;;) {
    try {
      const fh = await open(lockPath, "wx", 0o600);
      try {
        await fh.writeFile(JSON.stringify(me));
      } finally {
        await fh.close();
      }
      return;
    } catch (err) {
      if (errno(err) !== "EEXIST") throw storeFailed(lockPath, err);
    }
    const held = await look(lockPath);
    if (held !== undefined && isStale(held)) await breakLock(lockPath, held);
    else if (Date.now() - since > FILE_LOCK_WAIT_MS) {
      throw new ClientError(
        "STORE_FAILED",
        `the client store's lock ${lockPath} is held by another process (over ${FILE_LOCK_WAIT_MS} ms)`,
      );
    } else await new Promise((r) => setTimeout(r, FILE_LOCK_POLL_MS));
  }
}

/** The lock file as it is now: its text (empty while its holder is writing it), inode and age. */
interface Seen {
  text: string;
  ino: number;
  mtimeMs: number;
}

async function look(lockPath: string): Promise<Seen | undefined> {
  try {
    const st = await stat(lockPath);
    const text = await readFile(lockPath, "utf8");
    return { text, ino: st.ino, mtimeMs: st.mtimeMs };
  } catch (err) {
    if (errno(err) === "ENOENT") return undefined; // given up meanwhile: try again
    throw storeFailed(lockPath, err);
  }
}

function isStale(seen: Seen): boolean {
  if (Date.now() - seen.mtimeMs > FILE_LOCK_STALE_MS) return true;
  const holder = parseHolder(seen.text);
  // Unreadable (its holder between creating and writing it): only its age tells.
  if (holder === undefined || holder.host !== hostname()) return false;
  return !alive(holder.pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) !== "ESRCH"; // EPERM: another user's process, alive
  }
}

/**
 * Removes the stale lock `seen`: renamed away (one step), then checked to be that lock; another
 * process's new lock moved by mistake (it broke `seen` first and took the lock) is put back.
 */
async function breakLock(lockPath: string, seen: Seen): Promise<void> {
  const aside = `${lockPath}.${randomBytes(6).toString("hex")}.stale`;
  try {
    await rename(lockPath, aside);
  } catch (err) {
    if (errno(err) === "ENOENT") return;
    throw storeFailed(lockPath, err);
  }
  const moved = await look(aside);
  const same = moved !== undefined && moved.ino === seen.ino && moved.text === seen.text;
  if (!same) {
    try {
      await link(aside, lockPath);
    } catch (err) {
      if (errno(err) !== "EEXIST") throw storeFailed(lockPath, err);
    }
  }
  await unlink(aside).catch(() => undefined);
}

async function release(lockPath: string, nonce: string): Promise<void> {
  const seen = await look(lockPath).catch(() => undefined);
  // Not ours any more (broken as stale while this process was stopped): the new holder's stays.
  if (seen === undefined || parseHolder(seen.text)?.nonce !== nonce) return;
  await unlink(lockPath).catch(() => undefined);
}

function parseHolder(text: string): Holder | undefined {
  try {
    const v = JSON.parse(text) as Partial<Holder> | null;
    if (
      typeof v?.host === "string" &&
      Number.isSafeInteger(v.pid) &&
      (v.pid ?? 0) > 0 &&
      typeof v.nonce === "string"
    ) {
      return v as Holder;
    }
  } catch {
    // an empty or half-written lock
  }
  return undefined;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function storeFailed(lockPath: string, err: unknown): ClientError {
  return new ClientError(
    "STORE_FAILED",
    `the client store's lock ${lockPath} failed (${errno(err) ?? "error"})`,
    {
      cause: err,
    },
  );
}
