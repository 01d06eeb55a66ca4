/**
 * Rooms' recorded settings as saved, each read from the store once: every encrypted send needs
 * them (a store read and a parse per message, ~10 µs on SQLite, before this), and they change
 * only through steps of this machine, whose saved records replace what is kept here. Part of the
 * machine's parts, so a reload (another process wrote) or a failed step starts it empty again.
 */
import type { RoomSettingsRecord } from "../../store/records.ts";
import type { MachineContext } from "../machine-context.ts";

/** Rooms whose settings are kept; the least recently used go first (they are read again). */
export const MAX_CACHED_ROOM_SETTINGS = 1_024;

export class RoomSettingsCache {
  readonly #ctx: MachineContext;
  /** `null`: the store has none for that room. */
  readonly #byRoom = new Map<string, RoomSettingsRecord | null>();

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  /** The room's saved settings (not those of the step in progress), if any. */
  async get(roomId: string): Promise<RoomSettingsRecord | undefined> {
    const kept = this.#byRoom.get(roomId);
    if (kept !== undefined) {
      this.#keep(roomId, kept);
      return kept ?? undefined;
    }
    const stored = await this.#ctx.store.getRoomSettings(roomId);
    this.#keep(roomId, stored ?? null);
    return stored;
  }

  /** A step's changes were saved: these records are now the store's. */
  saved(records: readonly RoomSettingsRecord[]): void {
    for (const r of records) this.#keep(r.roomId, r);
  }

  #keep(roomId: string, record: RoomSettingsRecord | null): void {
    this.#byRoom.delete(roomId);
    this.#byRoom.set(roomId, record);
    if (this.#byRoom.size > MAX_CACHED_ROOM_SETTINGS) {
      const oldest = this.#byRoom.keys().next();
      if (oldest.done !== true) this.#byRoom.delete(oldest.value);
    }
  }
}
