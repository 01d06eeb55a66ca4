/**
 * The verification events' shapes and the test that picks them out of a sync. Apart from the
 * verification machine (`machine.ts`), which is loaded on first use: a client that never verifies
 * never loads the flows, SAS or QR code (see `bridge.ts`).
 */
import { isRecord } from "../../wire/json.ts";
import { EVENT_REQUEST, VERIFICATION_EVENT_TYPES } from "./constants.ts";

/** An event to send: to-device (to these devices of one user) or into a room. */
export type VerificationMessage =
  | {
      readonly kind: "to_device";
      readonly eventType: string;
      readonly userId: string;
      readonly deviceIds: readonly string[];
      readonly content: Record<string, unknown>;
    }
  | {
      readonly kind: "room";
      readonly roomId: string;
      /** The flow's other user: the one whose devices must read the event. */
      readonly otherUserId: string;
      readonly eventType: string;
      readonly content: Record<string, unknown>;
    };

/** A to-device event as sync delivers it; `senderDevice` only when the E2EE layer decrypted it. */
export interface VerificationToDeviceEvent {
  readonly type: string;
  readonly sender: string;
  readonly content: Record<string, unknown>;
  readonly senderDevice?: string | undefined;
}

export interface VerificationRoomEvent {
  readonly roomId: string;
  readonly eventId: string;
  readonly sender: string;
  readonly type: string;
  readonly content: Record<string, unknown>;
  readonly originServerTs: number;
  readonly senderDevice?: string | undefined;
}

/** Whether an event type is one the verification machine takes. */
export function isVerificationEvent(type: string, content: unknown): boolean {
  if (VERIFICATION_EVENT_TYPES.has(type)) return true;
  return type === "m.room.message" && isRecord(content) && content.msgtype === EVENT_REQUEST;
}
