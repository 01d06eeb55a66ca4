/**
 * A bound on the answers to other users' devices' key requests. Each answer is an Olm message
 * sent to the device; while one is queued, asking again costs nothing (one per device and
 * session), but once it has gone out, a device repeating its request would get (and cost us) one
 * message per request. In a `KEY_ANSWER_WINDOW_MS` window (from its first answer) each requesting
 * device gets at most `MAX_KEY_ANSWERS_PER_SESSION` answers for one session (room key), so an
 * answer lost on the way can be asked for again, and `MAX_KEY_ANSWERS_PER_DEVICE` in all: a
 * device that lost the keys of every room it shares with us asks once per room, and those are
 * answered. Later requests in the window are ignored, as any request we do not answer (it may ask
 * again later).
 */

/** Answers to one of another user's devices for one session within `KEY_ANSWER_WINDOW_MS`. */
export const MAX_KEY_ANSWERS_PER_SESSION = 3;
/** Answers to one of another user's devices, all sessions together, within `KEY_ANSWER_WINDOW_MS`. */
export const MAX_KEY_ANSWERS_PER_DEVICE = 100;
/** The window `MAX_KEY_ANSWERS_PER_SESSION` and `MAX_KEY_ANSWERS_PER_DEVICE` count in. */
export const KEY_ANSWER_WINDOW_MS = 10 * 60 * 1000;
/**
 * Devices whose answers are counted (those answered most recently; the window of the one whose
 * window started first is forgotten first).
 */
export const MAX_KEY_ANSWER_RATE_DEVICES = 1000;

interface Window {
  readonly start: number;
  count: number;
  /** Answers by session (`[roomId, sessionId]`); at most `MAX_KEY_ANSWERS_PER_DEVICE` entries. */
  readonly sessions: Map<string, number>;
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

  /** Whether another answer to the device for the session may go out now. */
  mayAnswer(userId: string, deviceId: string, roomId: string, sessionId: string): boolean {
    const w = this.#current(JSON.stringify([userId, deviceId]));
    if (w === undefined) return true;
    if (w.count >= MAX_KEY_ANSWERS_PER_DEVICE) return false;
    return (w.sessions.get(JSON.stringify([roomId, sessionId])) ?? 0) < MAX_KEY_ANSWERS_PER_SESSION;
  }

  /** An answer to the device for the session was queued. */
  answered(userId: string, deviceId: string, roomId: string, sessionId: string): void {
    const key = JSON.stringify([userId, deviceId]);
    const session = JSON.stringify([roomId, sessionId]);
    const w = this.#current(key);
    if (w !== undefined) {
      w.count++;
      w.sessions.set(session, (w.sessions.get(session) ?? 0) + 1);
      return;
    }
    this.#windows.set(key, { start: this.#now(), count: 1, sessions: new Map([[session, 1]]) });
    for (const oldest of this.#windows.keys()) {
      if (this.#windows.size <= MAX_KEY_ANSWER_RATE_DEVICES) break;
      this.#windows.delete(oldest);
    }
  }
}
