// Backup restore on Node: the records' decryption (one X25519 key agreement, HKDF, MAC check and
// AES-CBC per record, about half of a restore's CPU time) runs on worker threads while the
// restore's own thread imports and saves the keys decrypted before (`RestoreOptions.decryptor`).
// The workers start on first use, never keep the process alive (unref), and end after
// `BACKUP_WORKER_IDLE_MS` without work.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { BackupRecordsDecryptor } from "../../e2ee/backup/restore.ts";
import type { BackupWorkerAnswer, BackupWorkerRequest } from "./backup-worker.ts";

/** Worker threads at most (fewer on a machine with fewer cores: one core stays the restore's). */
export const MAX_BACKUP_WORKERS = 4;
/** Idle time after which the workers end (a restore keeps them busy; the next one starts them again). */
export const BACKUP_WORKER_IDLE_MS = 2000;

interface Pending {
  resolve(plaintexts: (string | undefined)[]): void;
  reject(error: Error): void;
}

interface PoolWorker {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

/** The worker thread, from the module beside this one in the form this one is loaded in. */
function newWorker(): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./backup-worker.js", import.meta.url));
  // Running from the TypeScript sources (tests, benchmarks: node --import tsx): Node 20 does not
  // apply tsx's loader to worker threads, so the worker registers it before loading its module.
  const url = JSON.stringify(new URL("./backup-worker.ts", import.meta.url).href);
  return new Worker(`import("tsx/esm/api").then(({ register }) => { register(); return import(${url}); })`, {
    eval: true,
  });
}

let pool: PoolWorker[] = [];
let nextId = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

function workerCount(): number {
  return Math.min(MAX_BACKUP_WORKERS, availableParallelism() - 1);
}

function start(): PoolWorker {
  const worker = newWorker();
  worker.unref();
  const entry: PoolWorker = { worker, pending: new Map() };
  const fail = (error: Error) => {
    pool = pool.filter((w) => w !== entry);
    for (const p of entry.pending.values()) p.reject(error);
    entry.pending.clear();
  };
  worker.on("message", (answer: BackupWorkerAnswer) => {
    const p = entry.pending.get(answer.id);
    if (p === undefined) return;
    entry.pending.delete(answer.id);
    p.resolve(answer.plaintexts.map((t) => t ?? undefined));
    if (pool.every((w) => w.pending.size === 0)) idleSoon();
  });
  worker.on("error", fail);
  worker.on("exit", () => fail(new Error("a backup worker thread ended")));
  return entry;
}

function idleSoon(): void {
  if (idleTimer !== undefined) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    if (pool.some((w) => w.pending.size > 0)) return;
    const ending = pool;
    pool = [];
    for (const w of ending) void w.worker.terminate();
  }, BACKUP_WORKER_IDLE_MS);
  idleTimer.unref();
}

/** The least busy worker, started if the pool is not full. */
function pick(): PoolWorker {
  if (pool.length < workerCount()) {
    const w = start();
    pool.push(w);
    return w;
  }
  return pool.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
}

const decrypt: BackupRecordsDecryptor = (privateKey, sessionData) => {
  if (idleTimer !== undefined) {
    clearTimeout(idleTimer);
    idleTimer = undefined;
  }
  const w = pick();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    w.pending.set(id, { resolve, reject });
    const fields: string[] = [];
    for (const d of sessionData) fields.push(text(d.ephemeral), text(d.ciphertext), text(d.mac));
    // A copy moved (not cloned) to the worker, which wipes it: no copy of the key stays behind here.
    const keyCopy = privateKey.slice();
    const request: BackupWorkerRequest = { id, privateKey: keyCopy, fields };
    w.worker.postMessage(request, [keyCopy.buffer]);
  });
};

/** A message field as it crosses to the worker: only strings (anything else fails to decrypt there as here). */
const text = (v: unknown): string => (typeof v === "string" ? v : "");

/** Worker threads for a restore's decryption, or undefined on a machine with one core. */
export function nodeBackupDecryptor(): BackupRecordsDecryptor | undefined {
  return workerCount() >= 1 ? decrypt : undefined;
}
