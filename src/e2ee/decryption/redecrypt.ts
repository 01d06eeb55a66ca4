/** Retrying the events that waited for a key, once it lands by any route or its sender withheld it. */
import { type DecryptionError, type DecryptionFailureCode, RETRYABLE_FAILURES } from "../errors.ts";
import type { Parts } from "../machine-parts.ts";
import type { RoomKeyUpdate } from "../room-keys/inbound.ts";
import type { PendingEvent, PendingEvents } from "./pending.ts";
import { type DecryptedRoomEvent, type EncryptedRoomEvent, parseMegolmEvent } from "./room-events.ts";

/** An event that failed earlier and fails now for a reason learnt since (its key was withheld). */
export interface UndecryptableRoomEvent {
  readonly roomId: string;
  readonly event: EncryptedRoomEvent;
  readonly error: DecryptionError;
}

/** A key landed (any route): withdraw our request for it and retry the events waiting on it. */
export async function keyArrived(
  p: Parts,
  pending: PendingEvents,
  update: RoomKeyUpdate,
  out: DecryptedRoomEvent[],
): Promise<void> {
  p.gossip.keyArrived(update);
  for (const waiting of pending.take(update.roomId, update.sessionId)) {
    const outcome = await tryDecrypt(p, pending, waiting);
    if (outcome.ok) out.push(outcome.event);
  }
}

/**
 * After a reload: the events waiting for a key that the store now holds (another process sharing
 * the store received it) are retried. The sessions are looked up in one store call per batch.
 */
export async function keysStoredElsewhere(
  p: Parts,
  pending: PendingEvents,
  out: DecryptedRoomEvent[],
): Promise<void> {
  for (const { roomId, sessionId } of await p.inbound.prefetch(pending.sessions())) {
    for (const waiting of pending.take(roomId, sessionId)) {
      const outcome = await tryDecrypt(p, pending, waiting);
      if (outcome.ok) out.push(outcome.event);
    }
  }
}

/**
 * The sender withheld a session's key: the events waiting on it fail now as `WITHHELD` (with the
 * sender's code), so the application can say why. They keep waiting: the key may still come.
 */
export async function keyWithheld(
  p: Parts,
  pending: PendingEvents,
  update: RoomKeyUpdate,
  out: UndecryptableRoomEvent[],
): Promise<void> {
  for (const waiting of pending.take(update.roomId, update.sessionId)) {
    const outcome = await tryDecrypt(p, pending, waiting);
    if (!outcome.ok && outcome.error.code === "WITHHELD")
      out.push({ roomId: waiting.roomId, event: waiting.event, error: outcome.error });
  }
}

/**
 * Whether an event that failed so waits for a key: a missing or withheld one, or (our copy names
 * another creator) the creator's own share, which `InboundSessions.add` holds as a rival.
 */
export function waitsForKey(code: DecryptionFailureCode): boolean {
  return RETRYABLE_FAILURES.has(code) || code === "MISMATCHED_SENDER";
}

async function tryDecrypt(p: Parts, pending: PendingEvents, waiting: PendingEvent) {
  const { event, roomId, requirement } = waiting;
  const outcome = await p.decryptor.decrypt(event, roomId, requirement);
  if (!outcome.ok && waitsForKey(outcome.error.code)) {
    pending.add(roomId, parseMegolmEvent(event).sessionId, event, requirement);
  }
  // Refused, but for the verification flow: the client takes it as it takes one decrypted at once.
  if (!outcome.ok && outcome.verificationEvent !== undefined) {
    pending.lateVerificationEvent(outcome.verificationEvent);
  }
  return outcome;
}
