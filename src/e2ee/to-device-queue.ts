/**
 * The machine's queue of to-device requests (room keys, unwedging dummies, forwards, key requests,
 * withheld notices), persisted as `QueuedRequestRecord`s in the same step as the state that made
 * them, so a crash between creating and sending one loses nothing.
 *
 * What the network can make us queue is bounded, so that a server refusing `/sendToDevice` cannot
 * grow the stored queue with every sync. Replies (answers to our own devices' key and secret
 * requests and to other users' devices' key requests, cancellations, unwedging dummies) are queued
 * at most {@link MAX_QUEUED_REPLIES} at once,
 * and one per thing replied to (a request repeated while its answer waits is not answered again);
 * past the bound a reply is not made (a requester that gets no answer asks again). Our own key
 * requests leave the queue with the request (bounded by `MAX_OUTGOING_KEY_REQUESTS`) if still
 * queued. Room keys, withheld notices and what the application sends are never dropped here.
 */
import type { JsonObject } from "../store/json.ts";
import type { QueuedRequestRecord } from "../store/records.ts";
import { type MachineContext, newRequestId, type StepChanges } from "./machine-context.ts";
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

/**
 * The saved queue, by request ID, with its replies counted as entries are set and deleted (built
 * again from the store's queue on open): `mayQueueReply` runs for each reply a flood asks of us,
 * and must not walk the queue each time.
 */
export class ToDeviceQueue extends Map<string, QueuedToDevice> {
  /** Replies queued under each key (one, unless an older queue held more). */
  readonly #replyKeys = new Map<string, number>();
  #replies = 0;

  /** Replies in the saved queue. */
  get replies(): number {
    return this.#replies;
  }

  /** Replies in the saved queue under `key`. */
  repliesUnder(key: string): number {
    return this.#replyKeys.get(key) ?? 0;
  }

  override set(id: string, q: QueuedToDevice): this {
    const old = super.get(id);
    if (old?.reply !== undefined) this.#count(old.reply, -1);
    if (q.reply !== undefined) this.#count(q.reply, 1);
    return super.set(id, q);
  }

  override delete(id: string): boolean {
    const old = super.get(id);
    if (old?.reply !== undefined) this.#count(old.reply, -1);
    return super.delete(id);
  }

  override clear(): void {
    this.#replyKeys.clear();
    this.#replies = 0;
    super.clear();
  }

  #count(key: string, by: number): void {
    this.#replies += by;
    const n = (this.#replyKeys.get(key) ?? 0) + by;
    if (n > 0) this.#replyKeys.set(key, n);
    else this.#replyKeys.delete(key);
  }
}

/** What a queued message is, beyond its request (stored in its body). */
export interface QueueTag {
  readonly roomId?: string;
  readonly reply?: string;
  readonly keyRequest?: string;
}

/** The `kind` of the queue's records (the store's queue is free-form). */
const TO_DEVICE_KIND = "to_device";

/**
 * The replies a step queued, and those of the saved queue it deleted, counted as it goes (the
 * step's `queuedRequests` gain replies only through `queueToDevice`).
 */
interface StepReplies {
  readonly queued: Map<string, number>;
  queuedCount: number;
  /** Saved replies deleted in the step: their IDs, and their count under each key. */
  readonly deleted: Set<string>;
  readonly deletedKeys: Map<string, number>;
  /** How many of the step's `deletedQueuedRequests` were looked at. */
  deletedSeen: number;
}

const stepReplies = new WeakMap<StepChanges, StepReplies>();

function stepRepliesOf(tx: StepChanges): StepReplies {
  let s = stepReplies.get(tx);
  if (s === undefined) {
    s = { queued: new Map(), queuedCount: 0, deleted: new Set(), deletedKeys: new Map(), deletedSeen: 0 };
    stepReplies.set(tx, s);
  }
  return s;
}

function countIn(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

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
  if (reply !== undefined) {
    const step = stepRepliesOf(ctx.tx);
    countIn(step.queued, reply, 1);
    step.queuedCount++;
  }
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
    // Read without parsing the request.
    if (r.kind === TO_DEVICE_KIND && !queue.has(r.requestId)) {
      yield { id: r.requestId, reply: r.body.reply, keyRequest: r.body.keyRequest };
    }
  }
}

/**
 * Whether a reply under `key` may be queued now: none is queued under that key, and fewer than
 * {@link MAX_QUEUED_REPLIES} replies are. Asked before encrypting the reply; counts kept up to date
 * rather than a walk of the queue (this runs for each reply a flood asks of us).
 */
export function mayQueueReply(ctx: MachineContext, queue: ToDeviceQueue, key: string): boolean {
  const tx = ctx.tx;
  const step = stepRepliesOf(tx);
  const deleted = tx.deletedQueuedRequests;
  for (; step.deletedSeen < deleted.length; step.deletedSeen++) {
    const id = deleted[step.deletedSeen] as string;
    const reply = queue.get(id)?.reply;
    if (reply === undefined || step.deleted.has(id)) continue;
    step.deleted.add(id);
    countIn(step.deletedKeys, reply, 1);
  }
  const saved = queue.repliesUnder(key) - (step.deletedKeys.get(key) ?? 0);
  if (saved > 0 || step.queued.has(key)) return false;
  return queue.replies - step.deleted.size + step.queuedCount < MAX_QUEUED_REPLIES;
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
    const [removed] = tx.queuedRequests.splice(index, 1);
    const reply = removed?.body.reply;
    if (typeof reply === "string") {
      const step = stepRepliesOf(tx);
      countIn(step.queued, reply, -1);
      step.queuedCount--;
    }
    return true;
  }
  for (const { id, keyRequest } of tagsInStep(ctx, queue)) {
    if (keyRequest !== requestId) continue;
    tx.deletedQueuedRequests.push(id);
    return true;
  }
  return false;
}
