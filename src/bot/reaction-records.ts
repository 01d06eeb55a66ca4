// Reactions the bot handled, remembered so that their removal can be reported too
// (`onReactionRemoved`). A removal is an `m.room.redaction` naming the reaction's event ID, and a
// redacted reaction says nothing any more (the redaction algorithm strips its content; an
// encrypted one loses its ciphertext), so the server cannot tell the bot what it was: the bot keeps
// the key, target and sender of each reaction it handled (the decrypted content, in encrypted
// rooms), the newest `MAX_REMEMBERED_REACTIONS`, in memory. A redaction that comes before the
// reaction could be read (its key came late) is remembered too, so the reaction is then not
// reported at all. Both are bounded: anyone in a room can send reactions and redactions.
import type { Room } from "../index.ts";

/** Reactions remembered across rooms for `onReactionRemoved` (the oldest forgotten first). */
export const MAX_REMEMBERED_REACTIONS = 10_000;
/** Redactions of events not seen (yet) remembered, for a reaction readable only after its removal. */
export const MAX_REMEMBERED_REDACTIONS = 10_000;
/** Longest reaction key remembered (a key is the sender's text; emoji are a few characters). */
export const MAX_REMEMBERED_REACTION_KEY = 256;
/**
 * Longest ID remembered (a reaction's, its target's, a redacted event's, a sender's: the spec's
 * bound on event and user IDs). Longer ones come only from a hostile sender or server (from room
 * version 11 a redaction names its event in free content) and are not kept: each entry stays small.
 */
export const MAX_REMEMBERED_ID_LENGTH = 255;

/** An ID short enough to keep (`MAX_REMEMBERED_ID_LENGTH`). */
const keepable = (id: string): boolean => id.length > 0 && id.length <= MAX_REMEMBERED_ID_LENGTH;

/** A reaction the bot handled. */
export interface ReactionRecord {
  key: string;
  targetEventId: string;
  sender: string;
}

export class ReactionRecords {
  /** `roomId \n reaction event ID` → the reaction. */
  readonly #reactions = new Map<string, ReactionRecord>();
  /** `roomId \n event ID` → who redacted it, for events not seen when their redaction came. */
  readonly #redacted = new Map<string, string>();

  /** A reaction the bot handled: its removal will be reported. */
  remember(roomId: string, reactionId: string, r: ReactionRecord): void {
    if (r.key.length > MAX_REMEMBERED_REACTION_KEY) return;
    if (!keepable(roomId) || !keepable(reactionId) || !keepable(r.targetEventId) || !keepable(r.sender))
      return;
    setBounded(this.#reactions, `${roomId}\n${reactionId}`, r, MAX_REMEMBERED_REACTIONS);
  }

  /** The reaction `reactionId` was, forgotten now (a reaction is removed once); undefined if unknown. */
  take(roomId: string, reactionId: string): ReactionRecord | undefined {
    const k = `${roomId}\n${reactionId}`;
    const r = this.#reactions.get(k);
    this.#reactions.delete(k);
    return r;
  }

  /** Whose reaction `reactionId` is, if the bot remembers it (it stays remembered). */
  senderOf(roomId: string, reactionId: string): string | undefined {
    return this.#reactions.get(`${roomId}\n${reactionId}`)?.sender;
  }

  /** A redaction of an event not known as a reaction (not seen, or not readable yet). */
  redactedUnseen(roomId: string, eventId: string, redactor: string): void {
    if (!keepable(roomId) || !keepable(eventId) || !keepable(redactor)) return;
    setBounded(this.#redacted, `${roomId}\n${eventId}`, redactor, MAX_REMEMBERED_REDACTIONS);
  }

  /** Who redacted `eventId` before the bot could read it, if anyone did. */
  redactorOf(roomId: string, eventId: string): string | undefined {
    return this.#redacted.get(`${roomId}\n${eventId}`);
  }

  /** A room the bot is no longer in: what was remembered of it goes. */
  forgetRoom(roomId: string): void {
    const prefix = `${roomId}\n`;
    for (const map of [this.#reactions, this.#redacted] as Map<string, unknown>[])
      for (const key of [...map.keys()]) if (key.startsWith(prefix)) map.delete(key);
  }

  get size(): number {
    return this.#reactions.size + this.#redacted.size;
  }
}

function setBounded<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}

/**
 * Whether `redactor` may take back `sender`'s reaction: as the client's rooms apply redactions
 * (`Room.mayRedact`: the redactor is of the sender's server, or a moderator; from room version 12
 * the room's creators always). Servers pass on some redactions they do not apply (a user of
 * another server without the power), so the bot checks as clients do.
 */
export function mayRedact(room: Room, redactor: string, sender: string): boolean {
  return room.mayRedact(redactor, sender);
}
