/**
 * Devices that gave no one-time key when we claimed one, so that they are not asked again for a
 * while (no request loop on them). Memory only. A server can list any number of made-up devices
 * with no keys, so the record is bounded: entries expire after the back-off, and past
 * {@link MAX_CLAIM_FAILURES} the oldest is forgotten first (that device may be asked again sooner).
 * Devices are named by user and device ID, not by Curve25519 key: anyone can publish a copy of
 * another device's key, and a copy with no one-time keys must not hold back the real device.
 */

/** A device that failed to give us a one-time key is not asked again for this long. */
export const CLAIM_FAILURE_BACKOFF_MS = 15 * 60 * 1000;
/** Devices whose failed claim we remember at most. */
export const MAX_CLAIM_FAILURES = 1000;

/** How a device is named in the back-off: its user and device ID. */
export function deviceKey(device: { readonly userId: string; readonly deviceId: string }): string {
  return JSON.stringify([device.userId, device.deviceId]);
}

export class ClaimBackoff {
  /** Device (`deviceKey`) → when its claim failed; in that order (oldest first). */
  readonly #failedAt = new Map<string, number>();

  get size(): number {
    return this.#failedAt.size;
  }

  /** Whether a claim for this device (`deviceKey`) may be made at `now`. */
  allows(device: string, now: number): boolean {
    const failedAt = this.#failedAt.get(device);
    return failedAt === undefined || now - failedAt >= CLAIM_FAILURE_BACKOFF_MS;
  }

  failed(device: string, now: number): void {
    this.#failedAt.delete(device);
    this.#failedAt.set(device, now);
    for (const [key, at] of this.#failedAt) {
      if (this.#failedAt.size <= MAX_CLAIM_FAILURES && now - at < CLAIM_FAILURE_BACKOFF_MS) break;
      this.#failedAt.delete(key);
    }
  }

  succeeded(device: string): void {
    this.#failedAt.delete(device);
  }
}
