/**
 * Device IDs that came back with new keys after their device was deleted (a logout, then a login
 * asking for the same ID with a new crypto store): the new keys make a new device. Our room keys
 * name their holders by user and device ID, so a room key the deleted device held would count the
 * new device as holding it too, and neither rotate (the deleted device lost access) nor reach it.
 * Each such replacement is noted with its time: a room key created before it is replaced at its
 * next share (`OutboundSessions.share`).
 *
 * Kept across restarts as custom values of the crypto store, read once per process. A server
 * can delete and list devices again at will, so past {@link MAX_REPLACED_DEVICES} the oldest notes
 * are forgotten; the time of the newest one forgotten is kept, and a room key created before it
 * counts as replaced (a server pushing a note out must not make a new device pass as the one that
 * holds the key: it would be given the key again, or never have it replaced).
 */
import type { JsonValue } from "../../store/json.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";

/** Device IDs remembered as used again by a new device, at most (oldest forgotten first). */
export const MAX_REPLACED_DEVICES = 1000;

const CUSTOM_KEY = "keyroom.replaced_devices.v1";
/** The time of the newest note forgotten past the bound (a number), if any was. */
const FORGOTTEN_KEY = "keyroom.replaced_devices.forgotten.v1";

interface DeviceName {
  readonly userId: string;
  readonly deviceId: string;
}

const nameOf = (d: DeviceName): string => JSON.stringify([d.userId, d.deviceId]);

interface Notes {
  readonly byName: Map<string, { device: DeviceName; at: number }>;
  /** The newest `at` of the notes forgotten past the bound, if any was. */
  forgottenAt: number | undefined;
}

/** The stored list (`[userId, deviceId, at]`, oldest first) by name; anything unreadable is left out. */
function parse(v: unknown, forgotten: unknown): Notes {
  const out: Notes = {
    byName: new Map(),
    forgottenAt: typeof forgotten === "number" && Number.isSafeInteger(forgotten) ? forgotten : undefined,
  };
  if (!Array.isArray(v)) return out;
  for (const e of v) {
    if (!Array.isArray(e) || e.length !== 3) continue;
    const [userId, deviceId, at] = e as unknown[];
    if (!isId(userId) || !isId(deviceId) || typeof at !== "number" || !Number.isSafeInteger(at)) continue;
    const device = { userId, deviceId };
    out.byName.delete(nameOf(device));
    out.byName.set(nameOf(device), { device, at });
  }
  bound(out);
  return out;
}

/** Forgets the oldest notes past the bound; returns whether it forgot any. */
function bound(notes: Notes): boolean {
  let forgot = false;
  for (const [oldest, { at }] of notes.byName) {
    if (notes.byName.size <= MAX_REPLACED_DEVICES) break;
    notes.byName.delete(oldest);
    notes.forgottenAt = Math.max(notes.forgottenAt ?? at, at);
    forgot = true;
  }
  return forgot;
}

/** Reads the record once and changes it inside machine steps (each change saved with its step). */
export class ReplacedDevices {
  readonly #ctx: MachineContext;
  /** The record as saved or about to be; the parts are rebuilt from the store after a failed step. */
  #notes: Notes | undefined;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  async #load(): Promise<Notes> {
    if (this.#notes === undefined) {
      const list = await this.#ctx.store.getCustomValue(CUSTOM_KEY);
      this.#notes ??= parse(list, await this.#ctx.store.getCustomValue(FORGOTTEN_KEY));
    }
    return this.#notes;
  }

  /** A new device now has the ID of `device`, which was deleted. */
  async note(device: DeviceName): Promise<void> {
    const notes = await this.#load();
    const name = nameOf(device);
    const byName = notes.byName;
    byName.delete(name); // re-inserted as the newest
    byName.set(name, { device: { userId: device.userId, deviceId: device.deviceId }, at: this.#ctx.now() });
    const forgot = bound(notes);
    const value = [...byName.values()].map(({ device: d, at }) => [d.userId, d.deviceId, at]);
    this.#ctx.tx.customValues = {
      ...this.#ctx.tx.customValues,
      [CUSTOM_KEY]: value as JsonValue,
      ...(forgot && notes.forgottenAt !== undefined ? { [FORGOTTEN_KEY]: notes.forgottenAt } : {}),
    };
  }

  /**
   * Whether any of these devices (the holders of a room key created at `createdAt`) had its ID
   * taken by a new device since. The same millisecond counts: one rotation too many at worst. A
   * note forgotten since `createdAt` may have named any of them: then they count as replaced.
   */
  async anySince(devices: readonly DeviceName[], createdAt: number): Promise<boolean> {
    if (devices.length === 0) return false;
    const { byName, forgottenAt } = await this.#load();
    if (forgottenAt !== undefined && forgottenAt >= createdAt) return true;
    if (byName.size === 0) return false;
    return devices.some((d) => (byName.get(nameOf(d))?.at ?? -Infinity) >= createdAt);
  }
}
