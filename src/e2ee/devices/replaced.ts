/**
 * Device IDs that came back with new keys after their device was deleted (a logout, then a login
 * asking for the same ID with a new crypto store): the new keys make a new device. Our room keys
 * name their holders by user and device ID, so a room key the deleted device held would count the
 * new device as holding it too, and neither rotate (the deleted device lost access) nor reach it.
 * Each such replacement is noted with its time: a room key created before it is replaced at its
 * next share (`OutboundSessions.share`).
 *
 * Kept across restarts as one custom value of the crypto store, read once per process. A server
 * can delete and list devices again at will, so past {@link MAX_REPLACED_DEVICES} the oldest notes
 * are forgotten.
 */
import type { JsonValue } from "../../store/json.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";

/** Device IDs remembered as used again by a new device, at most (oldest forgotten first). */
export const MAX_REPLACED_DEVICES = 1000;

const CUSTOM_KEY = "keyroom.replaced_devices.v1";

interface DeviceName {
  readonly userId: string;
  readonly deviceId: string;
}

const nameOf = (d: DeviceName): string => JSON.stringify([d.userId, d.deviceId]);

/** The stored list (`[userId, deviceId, at]`, oldest first) by name; anything unreadable is left out. */
function parse(v: unknown): Map<string, { device: DeviceName; at: number }> {
  const out = new Map<string, { device: DeviceName; at: number }>();
  if (!Array.isArray(v)) return out;
  for (const e of v) {
    if (!Array.isArray(e) || e.length !== 3) continue;
    const [userId, deviceId, at] = e as unknown[];
    if (!isId(userId) || !isId(deviceId) || typeof at !== "number" || !Number.isSafeInteger(at)) continue;
    const device = { userId, deviceId };
    out.delete(nameOf(device));
    out.set(nameOf(device), { device, at });
  }
  bound(out);
  return out;
}

function bound(notes: Map<string, unknown>): void {
  for (const oldest of notes.keys()) {
    if (notes.size <= MAX_REPLACED_DEVICES) break;
    notes.delete(oldest);
  }
}

/** Reads the record once and changes it inside machine steps (each change saved with its step). */
export class ReplacedDevices {
  readonly #ctx: MachineContext;
  /** The record as saved or about to be; the parts are rebuilt from the store after a failed step. */
  #notes: Map<string, { device: DeviceName; at: number }> | undefined;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  async #load(): Promise<Map<string, { device: DeviceName; at: number }>> {
    this.#notes ??= parse(await this.#ctx.store.getCustomValue(CUSTOM_KEY));
    return this.#notes;
  }

  /** A new device now has the ID of `device`, which was deleted. */
  async note(device: DeviceName): Promise<void> {
    const notes = await this.#load();
    const name = nameOf(device);
    notes.delete(name); // re-inserted as the newest
    notes.set(name, { device: { userId: device.userId, deviceId: device.deviceId }, at: this.#ctx.now() });
    bound(notes);
    const value = [...notes.values()].map(({ device: d, at }) => [d.userId, d.deviceId, at]);
    this.#ctx.tx.customValues = { ...this.#ctx.tx.customValues, [CUSTOM_KEY]: value as JsonValue };
  }

  /**
   * Whether any of these devices (the holders of a room key created at `createdAt`) had its ID
   * taken by a new device since. The same millisecond counts: one rotation too many at worst.
   */
  async anySince(devices: readonly DeviceName[], createdAt: number): Promise<boolean> {
    if (devices.length === 0) return false;
    const notes = await this.#load();
    if (notes.size === 0) return false;
    return devices.some((d) => (notes.get(nameOf(d))?.at ?? -Infinity) >= createdAt);
  }
}
