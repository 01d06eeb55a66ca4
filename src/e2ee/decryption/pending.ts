/**
 * Events that could not be decrypted yet because their key had not arrived (or was withheld, or
 * arrived only from a later index, or our copy names another creator than their sender). When a
 * key for their session lands by any route, the machine retries them and hands back what now
 * decrypts.
 */

import type { RoomSessionKey } from "../../store/records.ts";
import { getOrInsert } from "../collections.ts";
import {
  type DecryptedRoomEvent,
  type EncryptedRoomEvent,
  parseMegolmEvent,
  type SenderRequirement,
} from "./room-events.ts";

/** Undecryptable events remembered at most (oldest dropped first): memory a sender cannot grow. */
export const MAX_PENDING_EVENTS = 10_000;

/**
 * Refused senders' verification events decrypted when their key came, kept until the client takes
 * them for the verification flow (anyone in a room can send many): past this many, the oldest is
 * dropped.
 */
export const MAX_LATE_VERIFICATION_EVENTS = 100;

export interface PendingEvent {
  readonly event: EncryptedRoomEvent;
  readonly roomId: string;
  /** The requirement it was decrypted under: it holds when the key arrives too. */
  readonly requirement: SenderRequirement;
}

const sessionKey = (roomId: string, sessionId: string): string => `${roomId}\u0000${sessionId}`;

export class PendingEvents {
  /** Insertion-ordered: the first entry is the oldest. */
  readonly #bySession = new Map<string, Map<string, PendingEvent>>();
  #size = 0;
  /** See `lateVerificationEvent`; oldest first. */
  readonly #lateVerification: DecryptedRoomEvent[] = [];

  get size(): number {
    return this.#size;
  }

  add(roomId: string, sessionId: string, event: EncryptedRoomEvent, requirement: SenderRequirement): void {
    const key = sessionKey(roomId, sessionId);
    const events = getOrInsert(this.#bySession, key, () => new Map<string, PendingEvent>());
    const known = events.has(event.event_id);
    // Tried again: the latest call's requirement holds.
    events.set(event.event_id, { event, roomId, requirement });
    if (known) return;
    this.#size++;
    while (this.#size > MAX_PENDING_EVENTS) this.#dropOldest();
  }

  #dropOldest(): void {
    const first = this.#bySession.entries().next().value;
    if (first === undefined) return;
    const [key, events] = first;
    const oldest = events.keys().next().value;
    if (oldest !== undefined) {
      events.delete(oldest);
      this.#size--;
    }
    if (events.size === 0) this.#bySession.delete(key);
  }

  /** Removes and returns the events waiting for this session. */
  take(roomId: string, sessionId: string): PendingEvent[] {
    const key = sessionKey(roomId, sessionId);
    const events = this.#bySession.get(key);
    if (events === undefined) return [];
    this.#bySession.delete(key);
    this.#size -= events.size;
    return [...events.values()];
  }

  /** The sessions events wait for (each once). */
  sessions(): RoomSessionKey[] {
    const out: RoomSessionKey[] = [];
    for (const events of this.#bySession.values()) {
      const first = events.values().next().value;
      if (first !== undefined) {
        out.push({ roomId: first.roomId, sessionId: parseMegolmEvent(first.event).sessionId });
      }
    }
    return out;
  }

  /**
   * A waiting event decrypted now as a verification event of a sender the requirement refuses
   * (`RoomEventDecryption.verificationEvent`): kept for `takeLateVerificationEvents`.
   */
  lateVerificationEvent(event: DecryptedRoomEvent): void {
    this.#lateVerification.push(event);
    if (this.#lateVerification.length > MAX_LATE_VERIFICATION_EVENTS) this.#lateVerification.shift();
  }

  /** The events `lateVerificationEvent` kept, handed out once. */
  takeLateVerificationEvents(): DecryptedRoomEvent[] {
    return this.#lateVerification.splice(0);
  }

  remove(roomId: string, sessionId: string, eventId: string): void {
    const events = this.#bySession.get(sessionKey(roomId, sessionId));
    if (events?.delete(eventId)) this.#size--;
  }
}
