// Verification events (`m.key.verification.*`, an `m.room.message` request) from devices a room's
// sender requirement refuses: their timeline events stay undecryptable for the application, but
// the verification flow gets them when those events are emitted. Verifying is how such a device
// comes to be trusted, and the flow authenticates the keys itself (the SAS or QR code MACs).
import type { DecryptedRoomEvent } from "../../e2ee/index.ts";
import type { JsonObject } from "../../wire/index.ts";

/**
 * Such events held from their decryption until their timeline event is emitted (anyone in a room
 * can send many): past this many, the oldest is dropped.
 */
export const MAX_HELD_VERIFICATION_EVENTS = 100;

export interface RefusedVerificationEvent {
  readonly type: string;
  readonly content: JsonObject;
  readonly senderDeviceId: string | undefined;
}

export class RefusedVerificationEvents {
  readonly #events = new Map<string, RefusedVerificationEvent>();

  hold(event: DecryptedRoomEvent): void {
    const key = keyOf(event.roomId, event.eventId);
    this.#events.delete(key);
    this.#events.set(key, {
      type: event.type,
      content: { ...event.content } as JsonObject,
      senderDeviceId: event.senderDevice,
    });
    for (const oldest of this.#events.keys()) {
      if (this.#events.size <= MAX_HELD_VERIFICATION_EVENTS) break;
      this.#events.delete(oldest);
    }
  }

  /** The held event with this ID, handed out once. */
  take(roomId: string, eventId: string): RefusedVerificationEvent | undefined {
    const key = keyOf(roomId, eventId);
    const event = this.#events.get(key);
    this.#events.delete(key);
    return event;
  }
}

const keyOf = (roomId: string, eventId: string): string => JSON.stringify([roomId, eventId]);
