/**
 * Key requests from our own devices that we may not answer yet: the device is not verified (or
 * not even known). They wait here until the user verifies the device (then they are answered),
 * blacklists it (then they are dropped), or the requester cancels. Held in memory only, and
 * bounded: a requester that gets no answer asks again (clients re-send requests on restart).
 */

/** Requests held at most, all devices together (the oldest goes first). */
export const MAX_HELD_KEY_REQUESTS = 200;
/** Requests held at most per device (its oldest goes first). */
export const MAX_HELD_KEY_REQUESTS_PER_DEVICE = 50;

/** A request of one of our own devices for a room key we hold, waiting for that device's verification. */
export interface HeldKeyRequest {
  readonly deviceId: string;
  readonly requestId: string;
  readonly roomId: string;
  readonly sessionId: string;
}

const keyOf = (deviceId: string, requestId: string): string => JSON.stringify([deviceId, requestId]);

export class HeldKeyRequests {
  /** Insertion order is age: the first entries are the oldest. */
  readonly #held = new Map<string, HeldKeyRequest>();

  /** Holds a request; false if it was already held. Evicts the oldest beyond the limits. */
  hold(request: HeldKeyRequest): boolean {
    const key = keyOf(request.deviceId, request.requestId);
    if (this.#held.has(key)) return false;
    this.#held.set(key, request);
    const mine = [...this.#held].filter(([, r]) => r.deviceId === request.deviceId);
    if (mine.length > MAX_HELD_KEY_REQUESTS_PER_DEVICE) this.#held.delete(mine[0]![0]);
    if (this.#held.size > MAX_HELD_KEY_REQUESTS) {
      const oldest = this.#held.keys().next().value;
      if (oldest !== undefined) this.#held.delete(oldest);
    }
    return true;
  }

  cancel(deviceId: string, requestId: string): void {
    this.#held.delete(keyOf(deviceId, requestId));
  }

  /** Removes and returns the device's held requests, oldest first. */
  take(deviceId: string): HeldKeyRequest[] {
    const out: HeldKeyRequest[] = [];
    for (const [key, r] of this.#held) {
      if (r.deviceId !== deviceId) continue;
      out.push(r);
      this.#held.delete(key);
    }
    return out;
  }

  list(): HeldKeyRequest[] {
    return [...this.#held.values()];
  }
}
