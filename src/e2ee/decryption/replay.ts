/**
 * Replay detection: the first event seen at a Megolm message index owns it; the same ciphertext
 * under another event ID is refused. Records are kept in memory (bounded) and written to the
 * store in batches, riding along with the next step that saves anyway: decrypting a timeline must
 * not cost a database transaction per event. A crash can lose the last unsaved batch (at most
 * `REPLAY_FLUSH_BATCH - 1` records), which only reopens those indexes to one replay.
 */
import type { MachineStore } from "../store/port.ts";
import type { ReplayRecord } from "../store/records.ts";

/** Records remembered in memory (least recently used dropped; the store still has them). */
export const REPLAY_CACHE_SIZE = 100_000;
/** Unsaved records that force a write of their own. */
export const REPLAY_FLUSH_BATCH = 256;

const keyOf = (roomId: string, sessionId: string, index: number): string =>
  JSON.stringify([roomId, sessionId, index]);

export class ReplayGuard {
  readonly #recent = new Map<string, string>();
  #unsaved: ReplayRecord[] = [];

  /** Whether `record.eventId` may own its index; records it if it is the first. */
  async admit(store: MachineStore, record: ReplayRecord): Promise<boolean> {
    const key = keyOf(record.roomId, record.sessionId, record.messageIndex);
    let owner = this.#recent.get(key);
    if (owner === undefined) {
      owner = (await store.getReplay(record.roomId, record.sessionId, record.messageIndex))?.eventId;
      if (owner === undefined) this.#unsaved.push(record);
      this.#remember(key, owner ?? record.eventId);
    }
    return owner === undefined || owner === record.eventId;
  }

  #remember(key: string, eventId: string): void {
    this.#recent.delete(key);
    this.#recent.set(key, eventId);
    if (this.#recent.size > REPLAY_CACHE_SIZE) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
  }

  /** The records to write with this step: all of them if it saves anyway, else only a full batch. */
  take(stepSaves: boolean): ReplayRecord[] {
    if (!stepSaves && this.#unsaved.length < REPLAY_FLUSH_BATCH) return [];
    const out = this.#unsaved;
    this.#unsaved = [];
    return out;
  }

  /** A save failed: its records are unsaved again. */
  restore(records: readonly ReplayRecord[]): void {
    this.#unsaved = [...records, ...this.#unsaved];
  }

  /** Everything unsaved (on close). */
  takeAll(): ReplayRecord[] {
    return this.take(true);
  }
}
