// In-memory client store (tests, short-lived bots). Values are deep-copied so callers cannot mutate
// what is stored.
import type { BasicEvent, StateEvent } from "../../wire/index.ts";
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
  /**
   * Per room, the frozen state array (the client's, `RoomSnapshot.state`) whose copy `sync` holds:
   * a snapshot with the same array keeps that copy instead of copying the room's whole state again.
   */
  readonly #copied = new Map<string, readonly StateEvent[]>();

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
    this.sync ??= { nextBatch: changes.nextBatch, rooms: new Map(), accountData: new Map() };
    const s = this.sync;
    s.nextBatch = changes.nextBatch;
    for (const r of changes.rooms) {
      const stored = s.rooms.get(r.roomId);
      const same = stored !== undefined && this.#copied.get(r.roomId) === r.state;
      // The state's place among the keys kept (`{ ...r }`), its value set apart.
      const copy = copyJson({ ...r, state: [] as StateEvent[] });
      copy.state = same ? stored.state : copyJson(r.state);
      s.rooms.set(r.roomId, copy);
      if (Object.isFrozen(r.state)) this.#copied.set(r.roomId, r.state);
      else this.#copied.delete(r.roomId);
    }
    for (const id of changes.forgotten ?? []) {
      s.rooms.delete(id);
      this.#copied.delete(id);
    }
    for (const e of changes.accountData) s.accountData.set(e.type, copyJson(e));
  }
  async clear(): Promise<void> {
    this.session = undefined;
    this.sync = undefined;
    this.#copied.clear();
  }
  async saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    const stored = this.session;
    if (!expected(stored ? copyJson(stored) : undefined)) return false;
    if (stored && (stored.userId !== session.userId || stored.deviceId !== session.deviceId)) {
      this.sync = undefined;
      this.#copied.clear();
    }
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
