/**
 * Devices that started a new Olm session with us: a device that could not decrypt what we sent
 * (its session wedged, or it lost its session store) starts one and sends `m.dummy`, and room keys
 * we shared over the old session may never have reached it. As matrix-rust-sdk does (its
 * `olm_wedging_index`), each of our room keys in use that was shared with such a device is shared
 * with it again, once, when the room's key is next shared (`OutboundSessions.share`).
 *
 * Kept across restarts as one custom value of the crypto store, read once per process. Anyone can
 * start sessions on our fallback key, so a device's new session is noted at most once per
 * {@link RESHARE_INTERVAL_MS}, at most {@link MAX_RESHARES_PER_DEVICE} keys are given again per
 * note, and past {@link MAX_RENEWED_DEVICES} devices the oldest notes are forgotten.
 */
import type { JsonValue } from "../../store/json.ts";
import type { DeviceRecord } from "../devices/device.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";

/** Devices remembered as having started a new Olm session with us, at most (oldest forgotten). */
export const MAX_RENEWED_DEVICES = 200;
/**
 * A device's new Olm session is noted (its room keys given again) at most this often: a device
 * starting sessions on our fallback key in a loop gets each room key again once per interval.
 */
export const RESHARE_INTERVAL_MS = 60 * 60 * 1000;
/** Room keys given again to one device after one noted new session, at most. */
export const MAX_RESHARES_PER_DEVICE = 100;

const CUSTOM_KEY = "keyroom.olm_renewed.v1";

interface Renewal {
  readonly userId: string;
  readonly deviceId: string;
  /** The device's key when it started the session: a new device under the same ID is another. */
  readonly curve25519: string;
  /** When the new session was noted: room keys created after it went over that session. */
  readonly at: number;
  /** Session IDs of the room keys given again since. */
  readonly done: readonly string[];
}

const nameOf = (d: { userId: string; deviceId: string }): string => JSON.stringify([d.userId, d.deviceId]);

/** The stored list, oldest first; anything unreadable is left out. */
function parse(v: unknown): Map<string, Renewal> {
  const out = new Map<string, Renewal>();
  if (!Array.isArray(v)) return out;
  for (const e of v) {
    if (typeof e !== "object" || e === null || Array.isArray(e)) continue;
    const r = e as Record<string, unknown>;
    const { userId, deviceId, curve25519, at, done } = r;
    if (!isId(userId) || !isId(deviceId) || !isId(curve25519)) continue;
    if (typeof at !== "number" || !Number.isSafeInteger(at)) continue;
    if (!Array.isArray(done)) continue;
    const ids = done.filter(isId).slice(0, MAX_RESHARES_PER_DEVICE);
    const renewal = { userId, deviceId, curve25519, at, done: ids };
    out.delete(nameOf(renewal));
    out.set(nameOf(renewal), renewal);
  }
  while (out.size > MAX_RENEWED_DEVICES) {
    const oldest = out.keys().next().value;
    if (oldest === undefined) break;
    out.delete(oldest);
  }
  return out;
}

/** Reads the record once and changes it inside machine steps (each change saved with its step). */
export class RenewedSessions {
  readonly #ctx: MachineContext;
  /** The record as saved or about to be; the parts are rebuilt from the store after a failed step. */
  #renewals: Map<string, Renewal> | undefined;
  #version = 0;

  constructor(ctx: MachineContext) {
    this.#ctx = ctx;
  }

  async #load(): Promise<Map<string, Renewal>> {
    this.#renewals ??= parse(await this.#ctx.store.getCustomValue(CUSTOM_KEY));
    return this.#renewals;
  }

  /** Raised by every change to the record: `toReshare`'s answer holds while it stays. */
  get version(): number {
    return this.#version;
  }

  #save(renewals: Map<string, Renewal>): void {
    this.#version++;
    const value = [...renewals.values()].map((r) => ({ ...r, done: [...r.done] }));
    this.#ctx.tx.customValues = { ...this.#ctx.tx.customValues, [CUSTOM_KEY]: value as JsonValue };
  }

  /** `device` started a new Olm session with us (a pre-key message that decrypted and checked out). */
  async note(device: DeviceRecord): Promise<void> {
    const renewals = await this.#load();
    const name = nameOf(device);
    const now = this.#ctx.now();
    const last = renewals.get(name);
    if (
      last !== undefined &&
      last.curve25519 === device.curve25519Key &&
      last.at <= now &&
      now - last.at < RESHARE_INTERVAL_MS
    ) {
      return;
    }
    renewals.delete(name); // re-inserted as the newest
    renewals.set(name, {
      userId: device.userId,
      deviceId: device.deviceId,
      curve25519: device.curve25519Key,
      at: now,
      done: [],
    });
    for (const key of renewals.keys()) {
      if (renewals.size <= MAX_RENEWED_DEVICES) break;
      renewals.delete(key);
    }
    this.#save(renewals);
  }

  /**
   * Of these devices holding the room key `sessionId` (created at `createdAt`), those that started
   * a new Olm session since it was created and have not been given it again.
   */
  async toReshare<D extends DeviceRecord>(
    holders: readonly D[],
    sessionId: string,
    createdAt: number,
  ): Promise<D[]> {
    if (holders.length === 0) return [];
    const renewals = await this.#load();
    if (renewals.size === 0) return [];
    return holders.filter((d) => {
      const r = renewals.get(nameOf(d));
      return (
        r !== undefined &&
        r.curve25519 === d.curve25519Key &&
        r.at >= createdAt &&
        r.done.length < MAX_RESHARES_PER_DEVICE &&
        !r.done.includes(sessionId)
      );
    });
  }

  /** The room key `sessionId` was given again to these devices (its requests queued this step). */
  async reshared(devices: readonly DeviceRecord[], sessionId: string): Promise<void> {
    if (devices.length === 0) return;
    const renewals = await this.#load();
    for (const d of devices) {
      const name = nameOf(d);
      const r = renewals.get(name);
      if (r !== undefined) renewals.set(name, { ...r, done: [...r.done, sessionId] });
    }
    this.#save(renewals);
  }
}
