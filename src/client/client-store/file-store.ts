// A client store in one JSON file (Node). Each write goes to a temporary file, is fsynced and then
// renamed over the old one, so a crash leaves the previous or the next state, never half of one.
// The file holds the access token: it is created with mode 0600.
//
// Processes (and stores) sharing the file: every write is made under a lock file beside it
// (`file-lock.ts`) from the file as it is then, never from an older copy this process read, so no
// write puts back what another replaced (a session renewed elsewhere: its refresh token spent);
// `saveSessionIf` and `clearIf` check and write under that lock, in one step. Reads take the
// file as it is. What this process read last is kept with a handle on that file held open: the
// same inode at the path (its number cannot be reused while held) is the same content, since
// writes only ever replace the file, so an unchanged file is not read again.
import { close, closeSync, fstat, open as openFd, readFile } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import * as z from "../../wire/zod.ts";
import { ClientError } from "../errors.ts";
import { withFileLock } from "./file-lock.ts";
import {
  applySyncChanges,
  type ClientStore,
  copyJson,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
  sameStoredSession,
  storedSessionSchema,
  syncSnapshotSchema,
} from "./store.ts";

const fileSchema = z.object({
  version: z.literal(1),
  session: z.optional(storedSessionSchema),
  sync: z.optional(syncSnapshotSchema),
});
type FileDoc = z.infer<typeof fileSchema>;

/** The file as this process last read or wrote it (`fd`: open on that inode; none: no file). */
interface Seen {
  readonly doc: FileDoc;
  readonly fd: number | undefined;
  readonly dev: number;
  readonly ino: number;
}

const NO_FILE: Seen = { doc: { version: 1 }, fd: undefined, dev: 0, ino: 0 };

/**
 * The descriptor a store holds, closed when the store is collected unclosed. A plain descriptor,
 * not a `FileHandle`: Node warns of a handle closed by the collector.
 */
interface Held {
  fd: number | undefined;
}
const closeOnCollect = new FinalizationRegistry<Held>((held) => {
  if (held.fd !== undefined) closeSync(held.fd);
});

const openRead = (path: string) =>
  new Promise<number>((resolve, reject) => openFd(path, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
const statOf = (fd: number) =>
  new Promise<{ dev: number; ino: number }>((resolve, reject) =>
    fstat(fd, (err, st) => (err ? reject(err) : resolve(st))),
  );
const textOf = (fd: number) =>
  new Promise<string>((resolve, reject) =>
    readFile(fd, "utf8", (err, text) => (err ? reject(err) : resolve(text))),
  );
const closeFd = (fd: number) => close(fd, () => undefined);

export class FileClientStore implements ClientStore {
  private seen: Seen | undefined;
  /** The descriptor `seen` holds, for the collector (`closeOnCollect`). */
  private readonly held: Held = { fd: undefined };
  /** Reads and writes run one after another, in call order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {
    closeOnCollect.register(this, this.held);
  }

  /** `fn` after the reads and writes asked for before it. */
  private queued<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** The file as it is now (read again only when another write replaced it). */
  private async load(): Promise<FileDoc> {
    const seen = this.seen;
    let now: { dev: number; ino: number } | undefined;
    try {
      now = await stat(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (now === undefined) return this.see(NO_FILE);
    if (seen?.fd !== undefined && seen.dev === now.dev && seen.ino === now.ino) return seen.doc;
    let fd: number;
    try {
      fd = await openRead(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      return this.see(NO_FILE);
    }
    try {
      const st = await statOf(fd);
      const doc = this.parse(await textOf(fd));
      return this.see({ doc, fd, dev: st.dev, ino: st.ino });
    } catch (err) {
      closeFd(fd);
      throw err;
    }
  }

  private parse(text: string): FileDoc {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ClientError("STORE_CORRUPT", `client store ${this.path} is not JSON`);
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success)
      throw new ClientError("STORE_CORRUPT", `client store ${this.path} failed validation`);
    return parsed.data;
  }

  /** Takes `next` as what this process has seen, letting go of the file seen before. */
  private see(next: Seen): FileDoc {
    const before = this.seen?.fd;
    this.seen = next;
    this.held.fd = next.fd;
    if (before !== undefined && before !== next.fd) closeFd(before);
    return next.doc;
  }

  /** Writes `fn` of the file as it is, under the lock; `fn` returning its argument writes nothing. */
  private update(fn: (doc: FileDoc) => FileDoc): Promise<void> {
    return this.queued(async () => {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await withFileLock(`${this.path}.lock`, async () => {
        const doc = await this.load();
        const next = fn(doc);
        if (next === doc) return; // nothing changed: no write
        await this.write(next);
      });
    });
  }

  private async write(doc: FileDoc): Promise<void> {
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify(doc));
      await fh.sync();
    } finally {
      await fh.close();
    }
    // Held open from before it is renamed (the temporary name is this process's, under the lock).
    const fd = await openRead(tmp);
    try {
      const st = await statOf(fd);
      await rename(tmp, this.path);
      this.see({ doc, fd, dev: st.dev, ino: st.ino });
    } catch (err) {
      closeFd(fd);
      throw err;
    }
  }

  loadSession(): Promise<StoredSession | undefined> {
    return this.queued(async () => {
      const s = (await this.load()).session;
      return s ? copyJson(s) : undefined;
    });
  }
  saveSession(session: StoredSession): Promise<void> {
    return this.update((doc) =>
      sameStoredSession(doc.session, session) ? doc : { ...doc, session: copyJson(session) },
    );
  }
  async saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    let saved = false;
    await this.update((doc) => {
      const stored = doc.session;
      if (!expected(stored ? copyJson(stored) : undefined)) return doc;
      saved = true;
      if (sameStoredSession(stored, session)) return doc;
      // Another user's or device's sync state is not this session's.
      const other = stored && (stored.userId !== session.userId || stored.deviceId !== session.deviceId);
      return other ? { version: 1, session: copyJson(session) } : { ...doc, session: copyJson(session) };
    });
    return saved;
  }
  loadSync(): Promise<SyncSnapshot | undefined> {
    return this.queued(async () => {
      const s = (await this.load()).sync;
      return s ? copyJson(s) : undefined;
    });
  }
  saveSync(changes: SyncChanges): Promise<void> {
    return this.update((doc) => ({ ...doc, sync: applySyncChanges(doc.sync, copyJson(changes)) }));
  }
  async clear(): Promise<void> {
    await this.update((doc) => (doc.session === undefined && doc.sync === undefined ? doc : { version: 1 }));
  }
  async clearIf(ours: (stored: StoredSession | undefined) => boolean): Promise<boolean> {
    let cleared = false;
    await this.update((doc) => {
      cleared = ours(doc.session ? copyJson(doc.session) : undefined);
      return cleared && (doc.session !== undefined || doc.sync !== undefined) ? { version: 1 } : doc;
    });
    return cleared;
  }
  async close(): Promise<void> {
    await this.queued(async () => {
      this.see(NO_FILE);
      this.seen = undefined;
    });
  }
  /** Removes the file (tests, `logout --forget`). */
  async destroy(): Promise<void> {
    await this.queued(async () => {
      this.see(NO_FILE);
      this.seen = undefined;
      await rm(this.path, { force: true });
    });
  }
  toJSON(): Record<string, unknown> {
    return { type: "FileClientStore", path: this.path };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `FileClientStore(${this.path})`;
  }
}
