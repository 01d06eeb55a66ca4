// Membership as the bot sees it while sync runs: which rooms' events are news and which are history
// (a room the response being handled joins us to, until our join event passes), the rooms that
// response made us leave, and others' membership changes in rooms the bot is in, which go to the
// `onMember` handlers.
import type { Logger, MatrixClient, Membership, Room, RoomEvent } from "../index.ts";
import { AnswerLimitError } from "./answer-limits.ts";
import { RoomSender, type SendGate } from "./context.ts";
import type { Handlers } from "./handlers.ts";
import type { LocalStore } from "./local-store.ts";
import type { MemberChange } from "./options.ts";

/** What membership tracking takes of the bot. */
export interface MembershipHost {
  readonly client: MatrixClient;
  readonly logger: Logger;
  readonly local: LocalStore;
  readonly handlers: Handlers;
  /** Counts an answer against `answerLimits`. */
  readonly gate: SendGate;
}

export class RoomMembership {
  readonly #host: MembershipHost;
  /** Rooms whose membership changes are news: joined before this sync, or after our join event. */
  readonly #live = new Set<string>();
  /**
   * Rooms we were not in before the sync response being handled (it joins us, or joins and removes
   * us again), until our join event passes: the events that come before it (a server sends a newly
   * joined room's recent history, and the gap before it) are history, not handled, whatever their
   * timestamps (another server's clock may be ahead). Our join passes where the response has it: in
   * the gap or the timeline, or in the state block, which comes before the timeline.
   */
  readonly #joiningNow = new Set<string>();
  /** Rooms the bot left (or was kicked or banned from) in the response being handled. */
  readonly #leaving = new Set<string>();

  constructor(host: MembershipHost) {
    this.#host = host;
  }

  /** Membership changes in `roomId` are news from now on. */
  markLive(roomId: string): void {
    this.#live.add(roomId);
  }

  /** Our membership of a room changed in the response being handled. */
  onMyMembership(roomId: string, membership: Membership, previous: Membership | undefined): void {
    if (previous !== "join" && membership !== "invite" && membership !== "knock")
      this.#joiningNow.add(roomId);
    if (membership === "leave" || membership === "ban") this.#leaving.add(roomId);
  }

  /** Our join event in `roomId` passed: true if the response being handled joined us to it. */
  ownJoinPassed(roomId: string): boolean {
    return this.#joiningNow.delete(roomId);
  }

  /** Whether `roomId`'s events are history: the response being handled joins us, our join not passed yet. */
  isJoiningNow(roomId: string): boolean {
    return this.#joiningNow.has(roomId);
  }

  /** The response being handled is done: the rooms it made us leave (forgotten for the next). */
  settle(): string[] {
    this.#joiningNow.clear();
    const left = [...this.#leaving];
    this.#leaving.clear();
    return left;
  }

  /**
   * Membership changes from the timeline, once the bot is in the room: the members who were there
   * before the bot joined are not news (their joins come in the same timeline before the bot's own).
   */
  async onMemberEvent(room: Room, ev: RoomEvent): Promise<void> {
    const { client, logger, local, handlers } = this.#host;
    const userId = ev.stateKey as string;
    const membership = ev.content.membership as Membership;
    if (userId === client.userId) {
      if (membership === "join") this.#live.add(room.roomId);
      else this.#live.delete(room.roomId);
      return;
    }
    if (!this.#live.has(room.roomId) || local.isHandled(ev.eventId)) return;
    const prev = ev.unsigned?.prev_content?.membership;
    const previous = typeof prev === "string" ? (prev as Membership) : undefined;
    if (handlers.members.length === 0 || membership === previous) return;
    const change: MemberChange = {
      room,
      userId,
      membership,
      previous,
      // An answer to the event, so counted against `answerLimits` (unlike `room()`'s sends).
      sender: new RoomSender(client, room.roomId, `bot.job.${ev.eventId}`, undefined, this.#host.gate),
    };
    for (const { handler } of [...handlers.members]) {
      try {
        await handler(change);
      } catch (err) {
        if (err instanceof AnswerLimitError) break;
        logger.error({ err, roomId: room.roomId }, "membership handler failed");
      }
    }
    local.markHandled(ev.eventId);
  }

  /** What was kept for a room the bot is no longer in. */
  forgetRoom(roomId: string): void {
    this.#live.delete(roomId);
    this.#joiningNow.delete(roomId);
  }

  /** Rooms whose membership changes are news (for `Bot.roomMemory`). */
  get liveRooms(): number {
    return this.#live.size;
  }
}
