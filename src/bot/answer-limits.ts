// The loop breaker: what the bot sends in answer to room events is bounded per room in a sliding
// minute. Two bots that each answer the other's messages (a `hears` or `onMessage` skill replying
// with `m.text`, which the other takes as its next trigger) would otherwise talk for ever; past the
// bound the bot stops answering in that room until the minute frees, which ends such a loop for
// good (the other bot gets nothing more to answer). Nothing is sent to say so (a "slow down"
// message would feed the loop); one log line per episode says it, with no user text.
//
// Counted: every send made while handling an event (messages, notices, reactions, edits, files,
// welcomes on a membership change, the error boundary's and other automatic notices). Not counted
// nor bounded: scheduled jobs and webhooks posting through `bot.room()`, which answer the clock or
// an authenticated caller, not the room, so no other bot's message can set them off.
//
// The error boundary's "Sorry, that failed" notices are also bounded on their own: at most one per
// room per `ERROR_NOTICE_INTERVAL_MS`, so a handler that fails on every message does not answer
// every message.
import type { Clock, Logger } from "../index.ts";

/**
 * Default `answerLimits.perRoomPerMinute`: sends in answer to events one room gets in any 60
 * seconds. Two a second, sustained for a minute, is more than a busy room's users ask for (sixty
 * users each running a command every half minute), while two bots answering each other, each in
 * under half a second, reach it within the minute and stop.
 */
export const DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE = 120;
/** The sliding window the answers are counted in. */
export const ANSWER_WINDOW_MS = 60_000;
/** At most one "Sorry, that failed" notice per room in this time (further failures are only logged). */
export const ERROR_NOTICE_INTERVAL_MS = 60_000;

export interface AnswerLimits {
  /** Sends in answer to events per room in a sliding minute (default `DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE`). */
  perRoomPerMinute?: number;
}

/** A send refused because the room is over `answerLimits.perRoomPerMinute` (no error notice follows). */
export class AnswerLimitError extends Error {
  override readonly name = "AnswerLimitError";
  constructor(readonly roomId: string) {
    super("over answerLimits.perRoomPerMinute in this room: not answering until the minute frees");
  }
}

export class AnswerLimiter {
  readonly perRoomPerMinute: number;
  /** Per room: when its answers in the window were sent (oldest first), and whether it is paused. */
  readonly #rooms = new Map<string, { at: number[]; over: boolean }>();
  /** When each room last got an error notice (only rooms noticed within the interval). */
  readonly #errorNoticed = new Map<string, number>();
  #lastSweep = 0;

  constructor(
    private readonly clock: Pick<Clock, "now">,
    private readonly logger: Logger,
    opts: AnswerLimits = {},
  ) {
    this.perRoomPerMinute = opts.perRoomPerMinute ?? DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE;
  }

  /** Counts one answer in `roomId`, or throws `AnswerLimitError` when the room is at the bound. */
  take(roomId: string): void {
    const now = this.clock.now();
    this.#sweep(now);
    let room = this.#rooms.get(roomId);
    if (room === undefined) {
      room = { at: [], over: false };
      this.#rooms.set(roomId, room);
    }
    while (room.at.length > 0 && now - (room.at[0] as number) >= ANSWER_WINDOW_MS) room.at.shift();
    if (room.at.length >= this.perRoomPerMinute) {
      if (!room.over) {
        room.over = true;
        this.logger.warn(
          { roomId, perRoomPerMinute: this.perRoomPerMinute },
          "not answering in the room for now: over answerLimits.perRoomPerMinute (a loop with another bot?)",
        );
      }
      throw new AnswerLimitError(roomId);
    }
    room.over = false;
    room.at.push(now);
  }

  /** Whether an error notice may go to `roomId` now (and if so, counts it). */
  takeErrorNotice(roomId: string): boolean {
    const now = this.clock.now();
    const last = this.#errorNoticed.get(roomId);
    if (last !== undefined && now - last < ERROR_NOTICE_INTERVAL_MS) return false;
    this.#errorNoticed.set(roomId, now);
    return true;
  }

  /** The bot is no longer in `roomId`. */
  forgetRoom(roomId: string): void {
    this.#rooms.delete(roomId);
    this.#errorNoticed.delete(roomId);
  }

  /** Rooms with entries kept (for tests of `forgetRoom` and the sweep). */
  get size(): number {
    return this.#rooms.size + this.#errorNoticed.size;
  }

  /** Once a window: drops rooms with nothing in the window, so quiet rooms cost nothing. */
  #sweep(now: number): void {
    if (now - this.#lastSweep < ANSWER_WINDOW_MS) return;
    this.#lastSweep = now;
    for (const [id, r] of this.#rooms) {
      const newest = r.at.at(-1);
      if (newest === undefined || now - newest >= ANSWER_WINDOW_MS) this.#rooms.delete(id);
    }
    for (const [id, at] of this.#errorNoticed)
      if (now - at >= ERROR_NOTICE_INTERVAL_MS) this.#errorNoticed.delete(id);
  }
}
