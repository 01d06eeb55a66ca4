// Whether a reaction's target is one of the bot's own events, for `onReaction({ ownMessagesOnly })`.
// The room events sync delivers are remembered with whether the bot sent them; a target not seen
// that way (sent before a restart, or behind a gap in the timeline) is asked of the server once, by
// room and event ID, through the client's public `fetchEvent` (the bot framework sits on the public
// API only; the sender is read from the event, whether or not it decrypts). Bounded: reactions
// name targets of the sender's choice.
import { type Logger, type MatrixClient, MatrixError } from "../index.ts";

/** Reaction targets remembered as the bot's own or not, across rooms (the oldest forgotten first). */
export const MAX_KNOWN_REACTION_TARGETS = 10_000;

export class OwnEvents {
  readonly #client: MatrixClient;
  readonly #logger: Logger;
  /** `roomId \n eventId` → whether the bot sent it. */
  readonly #known = new Map<string, boolean>();

  constructor(client: MatrixClient, logger: Logger) {
    this.#client = client;
    this.#logger = logger;
  }

  /** A room event seen in sync, and whether the bot sent it. */
  seen(roomId: string, eventId: string, own: boolean): void {
    this.#set(roomId, eventId, own);
  }

  /**
   * Whether the bot sent `eventId` in `roomId`. An event the server refuses to show (4xx: unknown,
   * in another room, not visible) is not the bot's; any other failure (the network, a 5xx) is taken
   * as not the bot's this time, and asked again next time.
   */
  async isOwn(roomId: string, eventId: string): Promise<boolean> {
    const known = this.#known.get(`${roomId}\n${eventId}`);
    if (known !== undefined) return known;
    let own: boolean;
    try {
      own = (await this.#client.fetchEvent(roomId, eventId)).sender === this.#client.userId;
    } catch (err) {
      if (!(err instanceof MatrixError && err.httpStatus >= 400 && err.httpStatus < 500)) {
        this.#logger.warn({ err, roomId, eventId }, "could not tell whose event a reaction is to");
        return false;
      }
      own = false;
    }
    this.#set(roomId, eventId, own);
    return own;
  }

  /** A room the bot is no longer in: what was remembered of it goes. */
  forgetRoom(roomId: string): void {
    const prefix = `${roomId}\n`;
    for (const key of [...this.#known.keys()]) if (key.startsWith(prefix)) this.#known.delete(key);
  }

  get size(): number {
    return this.#known.size;
  }

  #set(roomId: string, eventId: string, own: boolean): void {
    const key = `${roomId}\n${eventId}`;
    this.#known.delete(key);
    this.#known.set(key, own);
    if (this.#known.size > MAX_KNOWN_REACTION_TARGETS) {
      const oldest = this.#known.keys().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
    }
  }
}
