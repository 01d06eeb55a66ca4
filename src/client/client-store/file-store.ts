// A client store in one JSON file (Node). Each write goes to a temporary file, is fsynced and then
// renamed over the old one, so a crash leaves the previous or the next state, never half of one.
// The file holds the access token: it is created with mode 0600.
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import * as z from "../../wire/zod.ts";
import { ClientError } from "../errors.ts";
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

export class FileClientStore implements ClientStore {
  private doc: FileDoc | undefined;
  /** Writes run one after another, in call order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  private async load(): Promise<FileDoc> {
    if (this.doc) return this.doc;
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        this.doc = { version: 1 };
        return this.doc;
      }
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ClientError("STORE_CORRUPT", `client store ${this.path} is not JSON`);
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success)
      throw new ClientError("STORE_CORRUPT", `client store ${this.path} failed validation`);
    this.doc = parsed.data;
    return this.doc;
  }

  private update(fn: (doc: FileDoc) => FileDoc): Promise<void> {
    const run = this.queue.then(async () => {
      const doc = await this.load();
      const next = fn(doc);
      if (next === doc) return; // nothing changed: no write (another process may share the file)
      await this.write(next);
      this.doc = next;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private async write(doc: FileDoc): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify(doc));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
  }

  async loadSession(): Promise<StoredSession | undefined> {
    const s = (await this.load()).session;
    return s ? copyJson(s) : undefined;
  }
  saveSession(session: StoredSession): Promise<void> {
    return this.update((doc) =>
      sameStoredSession(doc.session, session) ? doc : { ...doc, session: copyJson(session) },
    );
  }
  async loadSync(): Promise<SyncSnapshot | undefined> {
    const s = (await this.load()).sync;
    return s ? copyJson(s) : undefined;
  }
  saveSync(changes: SyncChanges): Promise<void> {
    return this.update((doc) => ({ ...doc, sync: applySyncChanges(doc.sync, copyJson(changes)) }));
  }
  async clear(): Promise<void> {
    await this.update(() => ({ version: 1 }));
  }
  async close(): Promise<void> {
    await this.queue;
  }
  /** Removes the file (tests, `logout --forget`). */
  async destroy(): Promise<void> {
    await this.queue;
    this.doc = undefined;
    await rm(this.path, { force: true });
  }
  toJSON(): Record<string, unknown> {
    return { type: "FileClientStore", path: this.path };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `FileClientStore(${this.path})`;
  }
}
