/** Retrying the events that waited for a key, once it lands by any route. */
import { RETRYABLE_FAILURES } from "../errors.ts";
import type { Parts } from "../machine-parts.ts";
import type { RoomKeyUpdate } from "../room-keys/inbound.ts";
import type { PendingEvent, PendingEvents } from "./pending.ts";
import { type DecryptedRoomEvent, parseMegolmEvent } from "./room-events.ts";

/** A key landed (any route): withdraw our request for it and retry the events waiting on it. */
export async function keyArrived(
  p: Parts,
  pending: PendingEvents,
  update: RoomKeyUpdate,
  out: DecryptedRoomEvent[],
): Promise<void> {
  p.gossip.keyArrived(update);
  for (const waiting of pending.take(update.roomId, update.sessionId)) {
    const retried = await tryDecrypt(p, pending, waiting);
    if (retried !== undefined) out.push(retried);
  }
}

async function tryDecrypt(
  p: Parts,
  pending: PendingEvents,
  waiting: PendingEvent,
): Promise<DecryptedRoomEvent | undefined> {
  const outcome = await p.decryptor.decrypt(waiting.event, waiting.roomId);
  if (outcome.ok) return outcome.event;
  if (RETRYABLE_FAILURES.has(outcome.error.code)) {
    pending.add(waiting.roomId, parseMegolmEvent(waiting.event).sessionId, waiting.event);
  }
  return undefined;
}
