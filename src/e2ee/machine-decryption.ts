/**
 * Room-event decryption as the machine runs it inside a step, one event or a batch: the
 * decryptor's outcome, then what follows from it (an event whose key may still come waits in
 * `PendingEvents`, and its key is asked of the backup or our other devices). Apart from
 * `OlmMachine` (the public API, which only picks the sender requirement) so that this path, the
 * hottest of the engine, reads in one place.
 */
import { isRecord } from "../wire/json.ts";
import type { PendingEvents } from "./decryption/pending.ts";
import { waitsForKey } from "./decryption/redecrypt.ts";
import {
  DECRYPT_PREFETCH_EVENTS,
  type EncryptedRoomEvent,
  parseMegolmEvent,
  type RoomEventDecryption,
  type RoomEventToDecrypt,
  type SenderRequirement,
} from "./decryption/room-events.ts";
import { RETRYABLE_FAILURES } from "./errors.ts";
import { isId } from "./limits.ts";
import type { Parts } from "./machine-parts.ts";

/**
 * One event (see `OlmMachine.tryDecryptRoomEvent`). Synchronous when the decryptor is (a
 * timeline's usual case: no async frame per event).
 */
export function decryptOne(
  p: Parts,
  pending: PendingEvents,
  event: EncryptedRoomEvent,
  roomId: string,
  requirement: SenderRequirement,
): RoomEventDecryption | Promise<RoomEventDecryption> {
  const outcome = p.decryptor.decrypt(event, roomId, requirement);
  if (outcome instanceof Promise)
    return outcome.then((o) => decrypted(p, pending, event, roomId, requirement, o));
  return decrypted(p, pending, event, roomId, requirement, outcome);
}

/**
 * A batch of events (see `OlmMachine.tryDecryptRoomEvents`): the stored sessions they need are
 * read in one store call per `DECRYPT_PREFETCH_EVENTS` events. The outcomes come in their order.
 */
export async function decryptBatch(
  p: Parts,
  pending: PendingEvents,
  events: readonly RoomEventToDecrypt[],
  requirement: SenderRequirement,
): Promise<RoomEventDecryption[]> {
  const out: RoomEventDecryption[] = [];
  try {
    for (let start = 0; start < events.length; start += DECRYPT_PREFETCH_EVENTS) {
      const chunk = events.slice(start, start + DECRYPT_PREFETCH_EVENTS);
      await p.decryptor.prefetch(chunk);
      for (const { event, roomId } of chunk) {
        const outcome = decryptOne(p, pending, event, roomId, requirement);
        out.push(outcome instanceof Promise ? await outcome : outcome);
      }
      p.inbound.dropPrefetched();
    }
  } finally {
    p.inbound.dropPrefetched();
  }
  return out;
}

/** After one event's decryption: what waits for it, or what it now waits for. */
function decrypted(
  p: Parts,
  pending: PendingEvents,
  event: EncryptedRoomEvent,
  roomId: string,
  requirement: SenderRequirement,
  outcome: RoomEventDecryption,
): RoomEventDecryption {
  if (outcome.ok) {
    // Decrypted now by other means (fetched again after its key came): nothing waits for it.
    if (pending.size > 0) pending.remove(roomId, parseMegolmEvent(event).sessionId, event.event_id);
    return outcome;
  }
  const { code } = outcome.error;
  if (RETRYABLE_FAILURES.has(code)) {
    const { sessionId } = parseMegolmEvent(event);
    pending.add(roomId, sessionId, event, requirement);
    const content = event.content;
    const senderKey = isRecord(content) ? content.sender_key : undefined;
    // Deprecated and unchecked: passed on in the key request only when the store can keep it.
    const key = isId(senderKey) ? senderKey : undefined;
    // The key backup is asked first, when we can read it; our other devices after it.
    if (code !== "WITHHELD" && !p.backup.queueLookup(roomId, sessionId, key, event.sender)) {
      p.gossip.request(roomId, sessionId, key, event.sender);
    }
  } else if (waitsForKey(code)) {
    pending.add(roomId, parseMegolmEvent(event).sessionId, event, requirement);
  }
  return outcome;
}
