/**
 * The machine's queue of to-device requests (room keys, unwedging dummies, forwards, key requests,
 * withheld notices), persisted as `QueuedRequestRecord`s in the same step as the state that made
 * them, so a crash between creating and sending one loses nothing.
 */
import type { JsonObject } from "../store/json.ts";
import type { QueuedRequestRecord } from "../store/records.ts";
import { type MachineContext, newRequestId } from "./machine-context.ts";
import type { ToDeviceRequest } from "./requests.ts";

export interface QueuedToDevice {
  readonly request: ToDeviceRequest;
  /** For room-key shares: the room whose outbound session the request carries. */
  readonly roomId: string | undefined;
}

/** The `kind` of the queue's records (the store's queue is free-form). */
const TO_DEVICE_KIND = "to_device";

/** Queues `request` in the step's changes. */
export function queueToDevice(ctx: MachineContext, request: ToDeviceRequest, roomId?: string): void {
  const body = {
    eventType: request.eventType,
    messages: request.body.messages,
    ...(roomId === undefined ? {} : { roomId }),
  };
  ctx.tx.queuedRequests.push({
    requestId: request.id,
    kind: TO_DEVICE_KIND,
    // Built from JSON we encrypted or parsed; the store checks it is plain JSON as it saves it.
    body: body as unknown as JsonObject,
    createdAt: ctx.now(),
  });
}

/** Queues Olm-encrypted `messages` (`m.room.encrypted`) as a new request; returns it. */
export function queueEncryptedToDevice(
  ctx: MachineContext,
  messages: ToDeviceRequest["body"]["messages"],
  roomId?: string,
): ToDeviceRequest {
  const request: ToDeviceRequest = {
    id: newRequestId(),
    type: "to_device",
    eventType: "m.room.encrypted",
    body: { messages },
  };
  queueToDevice(ctx, request, roomId);
  return request;
}

/** A queued record read back as a request, or undefined if it is not one of ours. */
export function queuedToDevice(r: QueuedRequestRecord): QueuedToDevice | undefined {
  const { eventType, messages, roomId } = r.body;
  if (
    r.kind !== TO_DEVICE_KIND ||
    typeof eventType !== "string" ||
    typeof messages !== "object" ||
    messages === null ||
    Array.isArray(messages)
  ) {
    return undefined;
  }
  const request: ToDeviceRequest = {
    id: r.requestId,
    type: "to_device",
    eventType,
    body: { messages: messages as ToDeviceRequest["body"]["messages"] },
  };
  return { request, roomId: typeof roomId === "string" ? roomId : undefined };
}

/** A to-device request queued in the running step (not yet in the machine's queue). */
export function queuedInStep(ctx: MachineContext, id: string): QueuedToDevice | undefined {
  const record = ctx.tx.queuedRequests.find((r) => r.requestId === id);
  return record && queuedToDevice(record);
}
