/**
 * The devices we told `m.no_olm` (no Olm session could be set up with them, so no room key
 * reaches them). The spec (`m.room_key.withheld`) asks for one such notice per device, not one per
 * room key: it speaks for every session, and a device that never publishes keys would otherwise
 * get one per room and rotation. Another may go only after an Olm session with the device was set
 * up in between, so a device is forgotten here once a room key is encrypted for it.
 *
 * Kept across restarts as one custom value of the crypto store. A server can list any number of
 * made-up devices with no keys, so past {@link MAX_NO_OLM_NOTICES} the oldest are forgotten (such a
 * device may be told once more). Devices are named by user and device ID, as in the claim
 * back-off: a copy of a device's Curve25519 key published elsewhere is another device.
 */
import type { JsonValue } from "../../store/json.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";

/** The `m.room_key.withheld` code for "no Olm session could be set up with you". */
export const NO_OLM_CODE = "m.no_olm";

/** Devices remembered as told `m.no_olm` at most (oldest forgotten first). */
export const MAX_NO_OLM_NOTICES = 1000;

const CUSTOM_KEY = "keyroom.no_olm_sent.v1";

interface DeviceName {
  readonly userId: string;
  readonly deviceId: string;
}

const nameOf = (d: DeviceName): string => JSON.stringify([d.userId, d.deviceId]);

/** The stored list, oldest first; anything unreadable is left out. */
function parseTold(v: unknown): [string, string][] {
  if (!Array.isArray(v)) return [];
  const told: [string, string][] = [];
  for (const entry of v) {
    if (Array.isArray(entry) && entry.length === 2 && isId(entry[0]) && isId(entry[1])) {
      told.push([entry[0], entry[1]]);
    }
  }
  return told;
}

/** Reads and changes the record inside one machine step (saved with the step). */
export class NoOlmNotices {
  readonly #ctx: MachineContext;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  async #load(): Promise<Map<string, [string, string]>> {
    const unsaved = this.#ctx.tx.customValues?.[CUSTOM_KEY];
    const stored = unsaved !== undefined ? unsaved : await this.#ctx.store.getCustomValue(CUSTOM_KEY);
    return new Map(parseTold(stored).map((d) => [JSON.stringify(d), d]));
  }

  #save(told: Map<string, [string, string]>): void {
    const value = [...told.values()].slice(-MAX_NO_OLM_NOTICES);
    this.#ctx.tx.customValues = { ...this.#ctx.tx.customValues, [CUSTOM_KEY]: value as JsonValue };
  }

  /**
   * Of these devices we could not set up an Olm session with, those not told `m.no_olm` yet; they
   * are remembered as told (the caller queues their notice in the same step).
   */
  async toTell<D extends DeviceName>(devices: readonly D[]): Promise<D[]> {
    if (devices.length === 0) return [];
    const told = await this.#load();
    const out: D[] = [];
    for (const d of devices) {
      const name = nameOf(d);
      if (told.has(name)) continue;
      told.set(name, [d.userId, d.deviceId]);
      out.push(d);
    }
    if (out.length > 0) this.#save(told);
    return out;
  }

  /** We hold an Olm session with these devices now: a later failure is told again. */
  async established(devices: readonly DeviceName[]): Promise<void> {
    if (devices.length === 0) return;
    const told = await this.#load();
    let changed = false;
    for (const d of devices) changed = told.delete(nameOf(d)) || changed;
    if (changed) this.#save(told);
  }
}
