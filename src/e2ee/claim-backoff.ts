/**
 * Devices that gave no one-time key when we claimed one, so that they are not asked again for a
 * while (no request loop on them). Memory only. A server can list any number of made-up devices
 * with no keys, so the record is bounded: entries expire after the back-off, and past
 * {@link MAX_CLAIM_FAILURES} the oldest is forgotten first (that device may be asked again sooner).
 */

/** A device that failed to give us a one-time key is not asked again for this long. */
export const CLAIM_FAILURE_BACKOFF_MS = 15 * 60 * 1000;
/** Devices whose failed claim we remember at most. */
export const MAX_CLAIM_FAILURES = 1000;

export class ClaimBackoff {
  /** Curve25519 key → when its claim failed; in that order (oldest first). */
  readonly #failedAt = new Map<string, number>();

  get size(): number {
    return this.#failedAt.size;
  }

  /** Whether a claim for the device with this key may be made at `now`. */
  allows(curve25519Key: string, now: number): boolean {
    const failedAt = this.#failedAt.get(curve25519Key);
    return failedAt === undefined || now - failedAt >= CLAIM_FAILURE_BACKOFF_MS;
  }

  failed(curve25519Key: string, now: number): void {
    this.#failedAt.delete(curve25519Key);
    this.#failedAt.set(curve25519Key, now);
    for (const [key, at] of this.#failedAt) {
      if (this.#failedAt.size <= MAX_CLAIM_FAILURES && now - at < CLAIM_FAILURE_BACKOFF_MS) break;
      this.#failedAt.delete(key);
    }
  }

  succeeded(curve25519Key: string): void {
    this.#failedAt.delete(curve25519Key);
  }
}
