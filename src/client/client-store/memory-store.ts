// In-memory client store (tests, short-lived bots). Values are deep-copied so callers cannot mutate
// what is stored.
import type { BasicEvent } from "../../wire/index.ts";
import {
  type ClientStore,
  copyJson,
  type RoomSnapshot,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
} from "./store.ts";

/**
 * The saved sync state, rooms and account data by key: a save replaces the entries it brings (in
 * place, so the order stays that of first saves) without rebuilding the rest, which made every
 * sync response cost O(rooms) here.
 */
interface StoredSync {
  nextBatch: string;
  readonly rooms: Map<string, RoomSnapshot>;
  readonly accountData: Map<string, BasicEvent>;
}

export class MemoryClientStore implements ClientStore {
  private session: StoredSession | undefined;
  private sync: StoredSync | undefined;

  async loadSession(): Promise<StoredSession | undefined> {
    return this.session ? copyJson(this.session) : undefined;
  }
  async saveSession(session: StoredSession): Promise<void> {
    this.session = copyJson(session);
  }
  async loadSync(): Promise<SyncSnapshot | undefined> {
    const s = this.sync;
    if (s === undefined) return undefined;
    return copyJson({
      nextBatch: s.nextBatch,
      rooms: [...s.rooms.values()],
      accountData: [...s.accountData.values()],
    });
  }
  async saveSync(changes: SyncChanges): Promise<void> {
    const c = copyJson(changes);
    this.sync ??= { nextBatch: c.nextBatch, rooms: new Map(), accountData: new Map() };
    const s = this.sync;
    s.nextBatch = c.nextBatch;
    for (const r of c.rooms) s.rooms.set(r.roomId, r);
    for (const id of c.forgotten ?? []) s.rooms.delete(id);
    for (const e of c.accountData) s.accountData.set(e.type, e);
  }
  async clear(): Promise<void> {
    this.session = undefined;
    this.sync = undefined;
  }
  async saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    const stored = this.session;
    if (!expected(stored ? copyJson(stored) : undefined)) return false;
    if (stored && (stored.userId !== session.userId || stored.deviceId !== session.deviceId))
      this.sync = undefined;
    this.session = copyJson(session);
    return true;
  }
  async clearIf(ours: (stored: StoredSession | undefined) => boolean): Promise<boolean> {
    if (!ours(this.session ? copyJson(this.session) : undefined)) return false;
    await this.clear();
    return true;
  }
  toJSON(): Record<string, unknown> {
    return { type: "MemoryClientStore", userId: this.session?.userId };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `MemoryClientStore(${this.session?.userId ?? "no session"})`;
  }
}
