/**
 * A bound on the answers to other users' devices' key requests. Each answer is an Olm message
 * sent to the device; while one is queued, asking again costs nothing (one per device and
 * session), but once it has gone out, a device repeating its request would get (and cost us) one
 * message per request. Each requesting device gets at most `MAX_KEY_ANSWERS_PER_DEVICE` answers
 * in a `KEY_ANSWER_WINDOW_MS` window (from its first answer); later requests in the window are
 * ignored, as any request we do not answer (it may ask again later).
 */

/** Answers to one of another user's devices within `KEY_ANSWER_WINDOW_MS`. */
export const MAX_KEY_ANSWERS_PER_DEVICE = 10;
/** The window `MAX_KEY_ANSWERS_PER_DEVICE` counts in. */
export const KEY_ANSWER_WINDOW_MS = 10 * 60 * 1000;
/**
 * Devices whose answers are counted (those answered most recently; the window of the one whose
 * window started first is forgotten first).
 */
export const MAX_KEY_ANSWER_RATE_DEVICES = 1000;

interface Window {
  readonly start: number;
  count: number;
}

export class KeyAnswerRate {
  /** By device (`[userId, deviceId]`), oldest window first. */
  readonly #windows = new Map<string, Window>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  #current(key: string): Window | undefined {
    const w = this.#windows.get(key);
    if (w === undefined) return undefined;
    if (this.#now() - w.start < KEY_ANSWER_WINDOW_MS) return w;
    this.#windows.delete(key);
    return undefined;
  }

  /** Whether another answer to the device may go out now. */
  mayAnswer(userId: string, deviceId: string): boolean {
    return (this.#current(JSON.stringify([userId, deviceId]))?.count ?? 0) < MAX_KEY_ANSWERS_PER_DEVICE;
  }

  /** An answer to the device was queued. */
  answered(userId: string, deviceId: string): void {
    const key = JSON.stringify([userId, deviceId]);
    const w = this.#current(key);
    if (w !== undefined) {
      w.count++;
      return;
    }
    this.#windows.set(key, { start: this.#now(), count: 1 });
    for (const oldest of this.#windows.keys()) {
      if (this.#windows.size <= MAX_KEY_ANSWER_RATE_DEVICES) break;
      this.#windows.delete(oldest);
    }
  }
}
