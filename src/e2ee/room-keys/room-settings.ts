/**
 * Rooms' recorded encryption settings, as the machine's steps use them: read from the store once
 * per room (every encrypted send needs them: a store read and a parse per message, ~10 µs on
 * SQLite, before this), merged with what callers pass, recorded in the step's changes. They change
 * only through steps of this machine, whose saved records replace what is kept here. Part of the
 * machine's parts, so a reload (another process wrote) or a failed step starts it empty again.
 */
import { StoreError } from "../../store/errors.ts";
import type { RoomSettingsRecord } from "../../store/records.ts";
import { parseRoomSettings } from "../../store/validate.ts";
import { E2eeError } from "../errors.ts";
import type { MachineContext } from "../machine-context.ts";
import {
  mergeRoomSettings,
  type ResolvedSettings,
  type RoomEncryptionSettings,
  resolveSettings,
  roomSettingsOf,
  type SettingsDefaults,
} from "./settings.ts";

/** Rooms whose settings are kept; the least recently used go first (they are read again). */
export const MAX_CACHED_ROOM_SETTINGS = 1_024;

export class RoomSettings {
  readonly #ctx: MachineContext;
  /** `null`: the store has none for that room. */
  readonly #byRoom = new Map<string, RoomSettingsRecord | null>();

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  /** The settings recorded for a room, if any. */
  async recorded(roomId: string): Promise<RoomEncryptionSettings | undefined> {
    const stored = await this.#get(roomId);
    return stored === undefined ? undefined : roomSettingsOf(stored);
  }

  /**
   * Records a room's settings (from `m.room.encryption`, and the user's per-room choices). Throws
   * `ENCRYPTION_DOWNGRADE` if the algorithm would change. Settings naming the algorithm are the
   * room's `m.room.encryption`: its rotation periods replace the recorded ones, and one it does not
   * name falls back to the default (the spec's), not to what an earlier event asked for.
   */
  async record(roomId: string, settings: RoomEncryptionSettings): Promise<void> {
    let stored = await this.#get(roomId);
    if (stored !== undefined && settings.algorithm !== undefined) {
      const { rotationPeriodMs: _ms, rotationPeriodMessages: _msgs, ...kept } = stored;
      stored = kept;
    }
    const merged = mergeRoomSettings(roomId, stored, settings);
    try {
      // Checked here, as the store will: a value of the wrong kind (a `shareWith` the app
      // misspelled) is the caller's mistake, not a store failure at the end of the step.
      parseRoomSettings(merged);
    } catch (e) {
      if (e instanceof StoreError) throw new E2eeError("BAD_ARGUMENT", `bad room settings: ${e.message}`);
      throw e;
    }
    this.#ctx.tx.roomSettings.push(merged);
  }

  /**
   * The room's recorded settings with what the caller passes for this send, resolved against the
   * machine's defaults. The first send records them: later ones cannot downgrade them.
   */
  async forSend(
    roomId: string,
    settings: RoomEncryptionSettings,
    defaults: SettingsDefaults,
  ): Promise<ResolvedSettings> {
    const stored = await this.#get(roomId);
    const merged = mergeRoomSettings(roomId, stored, settings);
    if (stored === undefined) this.#ctx.tx.roomSettings.push(merged);
    return resolveSettings(
      {
        algorithm: merged.algorithm,
        rotationPeriodMs: merged.rotationPeriodMs,
        rotationPeriodMessages: merged.rotationPeriodMessages,
        verifyDevices: merged.verifyDevices,
        historyVisibility: settings.historyVisibility,
        onlyVerifiedDevices: settings.onlyVerifiedDevices,
        // What the caller passes now wins over what the user recorded for the room.
        shareWith: settings.shareWith ?? merged.shareWith,
        errorOnVerifiedUserProblems: merged.errorOnVerifiedUserProblems,
      },
      defaults,
    );
  }

  /** Whether a room has settings recorded (it is encrypted, for good). */
  async isRecorded(roomId: string): Promise<boolean> {
    return (await this.#get(roomId)) !== undefined;
  }

  /** A step's changes were saved: these records are now the store's. */
  saved(records: readonly RoomSettingsRecord[]): void {
    for (const r of records) this.#keep(r.roomId, r);
  }

  /** The room's saved settings (not those of the step in progress), if any. */
  async #get(roomId: string): Promise<RoomSettingsRecord | undefined> {
    const kept = this.#byRoom.get(roomId);
    if (kept !== undefined) {
      this.#keep(roomId, kept);
      return kept ?? undefined;
    }
    const stored = await this.#ctx.store.getRoomSettings(roomId);
    this.#keep(roomId, stored ?? null);
    return stored;
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
