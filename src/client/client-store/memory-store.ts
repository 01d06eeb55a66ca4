// In-memory client store (tests, short-lived bots). Values are deep-copied so callers cannot mutate
// what is stored.
import {
  applySyncChanges,
  type ClientStore,
  copyJson,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
} from "./store.ts";

export class MemoryClientStore implements ClientStore {
  private session: StoredSession | undefined;
  private sync: SyncSnapshot | undefined;

  async loadSession(): Promise<StoredSession | undefined> {
    return this.session ? { ...this.session } : undefined;
  }
  async saveSession(session: StoredSession): Promise<void> {
    this.session = { ...session };
  }
  async loadSync(): Promise<SyncSnapshot | undefined> {
    return this.sync ? copyJson(this.sync) : undefined;
  }
  async saveSync(changes: SyncChanges): Promise<void> {
    this.sync = applySyncChanges(this.sync, copyJson(changes));
  }
  async clear(): Promise<void> {
    this.session = undefined;
    this.sync = undefined;
  }
  toJSON(): Record<string, unknown> {
    return { type: "MemoryClientStore", userId: this.session?.userId };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `MemoryClientStore(${this.session?.userId ?? "no session"})`;
  }
}
