/**
 * The machine's queue of to-device requests (room keys, unwedging dummies, forwards, key requests,
 * withheld notices), persisted as `QueuedRequestRecord`s in the same step as the state that made
 * them, so a crash between creating and sending one loses nothing.
 *
 * What the network can make us queue is bounded, so that a server refusing `/sendToDevice` cannot
 * grow the stored queue with every sync. Replies (answers to our own devices' key and secret
 * requests, cancellations, unwedging dummies) are queued at most {@link MAX_QUEUED_REPLIES} at once,
 * and one per thing replied to (a request repeated while its answer waits is not answered again);
 * past the bound a reply is not made (a requester that gets no answer asks again). Our own key
 * requests leave the queue with the request (bounded by `MAX_OUTGOING_KEY_REQUESTS`) if still
 * queued. Room keys, withheld notices and what the application sends are never dropped here.
 */
import type { JsonObject } from "../store/json.ts";
import type { QueuedRequestRecord } from "../store/records.ts";
import { type MachineContext, newRequestId } from "./machine-context.ts";
import type { ToDeviceRequest } from "./requests.ts";

/**
 * Replies queued at most at once (see above): room for every answer waiting for an Olm session
 * (`MAX_PENDING_KEY_ANSWERS`, `MAX_PENDING_SECRET_ANSWERS`) to go out in one step, with room to spare.
 */
export const MAX_QUEUED_REPLIES = 1000;

export interface QueuedToDevice {
  readonly request: ToDeviceRequest;
  /** For room-key shares: the room whose outbound session the request carries. */
  readonly roomId: string | undefined;
  /** For replies: what it replies to (one reply queued per key; see {@link MAX_QUEUED_REPLIES}). */
  readonly reply: string | undefined;
  /** For our own key requests: the request's `request_id`, withdrawn with it while still queued. */
  readonly keyRequest: string | undefined;
}

/** What a queued message is, beyond its request (stored in its body). */
export interface QueueTag {
  readonly roomId?: string;
  readonly reply?: string;
  readonly keyRequest?: string;
}

/** The `kind` of the queue's records (the store's queue is free-form). */
const TO_DEVICE_KIND = "to_device";

/** Queues `request` in the step's changes (a string `tag` is a room-key share's room). */
export function queueToDevice(ctx: MachineContext, request: ToDeviceRequest, tag?: string | QueueTag): void {
  const { roomId, reply, keyRequest } = typeof tag === "string" ? { roomId: tag } : (tag ?? {});
  const body = {
    eventType: request.eventType,
    messages: request.body.messages,
    ...(roomId === undefined ? {} : { roomId }),
    ...(reply === undefined ? {} : { reply }),
    ...(keyRequest === undefined ? {} : { keyRequest }),
  };
  ctx.tx.queuedRequests.push({
    requestId: request.id,
    kind: TO_DEVICE_KIND,
    // Built from JSON we encrypted or parsed; the store checks it is plain JSON as it saves it.
    body: body as unknown as JsonObject,
    createdAt: ctx.now(),
  });
}

/**
 * Queues Olm-encrypted `messages` (`m.room.encrypted`) as a new request; returns it. A string
 * `tag` is a room-key share's room (as for `queueToDevice`).
 */
export function queueEncryptedToDevice(
  ctx: MachineContext,
  messages: ToDeviceRequest["body"]["messages"],
  tag?: string | QueueTag,
): ToDeviceRequest {
  const request: ToDeviceRequest = {
    id: newRequestId(),
    type: "to_device",
    eventType: "m.room.encrypted",
    body: { messages },
  };
  queueToDevice(ctx, request, tag);
  return request;
}

/** A queued record read back as a request, or undefined if it is not one of ours. */
export function queuedToDevice(r: QueuedRequestRecord): QueuedToDevice | undefined {
  const { eventType, messages, roomId, reply, keyRequest } = r.body;
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
  return {
    request,
    roomId: typeof roomId === "string" ? roomId : undefined,
    reply: typeof reply === "string" ? reply : undefined,
    keyRequest: typeof keyRequest === "string" ? keyRequest : undefined,
  };
}

/** A to-device request queued in the running step (not yet in the machine's queue). */
export function queuedInStep(ctx: MachineContext, id: string): QueuedToDevice | undefined {
  const record = ctx.tx.queuedRequests.find((r) => r.requestId === id);
  return record && queuedToDevice(record);
}

/** The tags of the queue as this step leaves it (the saved queue, less what the step deleted, plus what it queued). */
function* tagsInStep(
  ctx: MachineContext,
  queue: ReadonlyMap<string, QueuedToDevice>,
): Generator<{ readonly id: string; readonly reply: unknown; readonly keyRequest: unknown }> {
  const deleted = ctx.tx.deletedQueuedRequests;
  const gone = deleted.length === 0 ? undefined : new Set(deleted);
  for (const [id, q] of queue) {
    if (gone === undefined || !gone.has(id)) yield { id, reply: q.reply, keyRequest: q.keyRequest };
  }
  for (const r of ctx.tx.queuedRequests) {
    // Read without parsing the request: this runs for each reply a flood asks of us.
    if (r.kind === TO_DEVICE_KIND && !queue.has(r.requestId)) {
      yield { id: r.requestId, reply: r.body.reply, keyRequest: r.body.keyRequest };
    }
  }
}

/**
 * Whether a reply under `key` may be queued now: none is queued under that key, and fewer than
 * {@link MAX_QUEUED_REPLIES} replies are. Asked before encrypting the reply.
 */
export function mayQueueReply(
  ctx: MachineContext,
  queue: ReadonlyMap<string, QueuedToDevice>,
  key: string,
): boolean {
  let replies = 0;
  for (const { reply } of tagsInStep(ctx, queue)) {
    if (typeof reply !== "string") continue;
    if (reply === key || ++replies >= MAX_QUEUED_REPLIES) return false;
  }
  return true;
}

/**
 * Takes the message of our key request `requestId` out of the queue if it is still there; true if
 * it was. (It may have been handed out and be on its way: marking it sent is then a no-op.)
 */
export function withdrawKeyRequest(
  ctx: MachineContext,
  queue: ReadonlyMap<string, QueuedToDevice>,
  requestId: string,
): boolean {
  const tx = ctx.tx;
  const index = tx.queuedRequests.findIndex(
    (r) => r.kind === TO_DEVICE_KIND && r.body.keyRequest === requestId,
  );
  if (index >= 0) {
    tx.queuedRequests.splice(index, 1);
    return true;
  }
  for (const { id, keyRequest } of tagsInStep(ctx, queue)) {
    if (keyRequest !== requestId) continue;
    tx.deletedQueuedRequests.push(id);
    return true;
  }
  return false;
}
