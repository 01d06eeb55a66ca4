/**
 * Room key requests (spec "Key requests"): asking our other devices for a key we lack, cancelling
 * once it arrives, answering our own verified devices (holding the requests of unverified ones
 * until they are verified: by a trust call, or a `/keys/query` that shows them cross-signed by our
 * trusted identity), answering another user's device only with a key this device created and gave
 * it (from the index it was given, as matrix-rust-sdk), and accepting `m.forwarded_room_key` only
 * when we asked and it came from a trusted device of ours.
 */

import { InboundGroupSession, MegolmError } from "../../crypto/megolm/index.ts";
import type { OutgoingKeyRequestRecord } from "../../store/records.ts";
import * as z from "../../wire/zod.ts";
import type { CrossSigning } from "../cross-signing/manager.ts";
import { type DeviceRecord, MEGOLM_ALGORITHM } from "../devices/device.ts";
import type { DeviceManager } from "../devices/manager.ts";
import { idSchema, MAX_FORWARDING_CHAIN } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import { newRequestId } from "../machine-context.ts";
import type { DecryptedOlmEvent, OlmSessions } from "../olm-sessions/sessions.ts";
import type { ToDeviceRequest } from "../requests.ts";
import type { InboundSessions, RoomKeyUpdate } from "../room-keys/inbound.ts";
import type { SharedRoomKey } from "../room-keys/outbound.ts";
import {
  mayQueueReply,
  type QueueTag,
  queueToDevice,
  type ToDeviceQueue,
  withdrawKeyRequest,
} from "../to-device-queue.ts";
import { KeyAnswerRate } from "./answer-rate.ts";
import type { HeldKeyRequest, HeldKeyRequests } from "./held.ts";

/**
 * Requests waiting for an Olm session (bounded: they are cheap to resend): from our other devices,
 * and from other users' devices we gave the key (one per device and session).
 */
export const MAX_PENDING_KEY_ANSWERS = 500;
/**
 * Outstanding requests of our own at most: events naming random sessions must not make us queue
 * and store requests without end. Any member can send such events, so the table is also bounded
 * per room and per sender, and a full bucket makes room by dropping its own oldest request (that of
 * the sender with the most requests): junk never keeps a real request from being made.
 */
export const MAX_OUTGOING_KEY_REQUESTS = 1000;
export const MAX_KEY_REQUESTS_PER_ROOM = 250;
export const MAX_KEY_REQUESTS_PER_SENDER = 50;
/** A request nobody answered within this long is dropped (a later failure may ask again). */
export const KEY_REQUEST_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** Requests read back from the store do not say whose event caused them: one bucket for them all. */
const UNKNOWN_SENDER = "";

export { MAX_FORWARDING_CHAIN } from "../limits.ts";
export {
  KEY_ANSWER_WINDOW_MS,
  MAX_KEY_ANSWER_RATE_DEVICES,
  MAX_KEY_ANSWERS_PER_DEVICE,
  MAX_KEY_ANSWERS_PER_SESSION,
} from "./answer-rate.ts";

const requestSchema = z.object({
  action: z.enum(["request", "request_cancellation"]),
  request_id: idSchema,
  requesting_device_id: idSchema,
  body: z.optional(
    z.object({
      algorithm: z.string(),
      room_id: idSchema,
      session_id: idSchema,
      sender_key: z.optional(idSchema),
    }),
  ),
});

const forwardedSchema = z.object({
  algorithm: z.literal(MEGOLM_ALGORITHM),
  room_id: idSchema,
  session_id: idSchema,
  session_key: z.string().check(z.minLength(1)),
  sender_key: idSchema,
  sender_claimed_ed25519_key: idSchema,
  forwarding_curve25519_key_chain: z.array(idSchema).check(z.maxLength(MAX_FORWARDING_CHAIN)),
});

interface PendingAnswer {
  readonly device: DeviceRecord;
  readonly roomId: string;
  readonly sessionId: string;
  readonly requestId: string;
}

/** Another user's device and the session it asks for. */
interface SharedKeyRequest {
  readonly userId: string;
  readonly deviceId: string;
  readonly roomId: string;
  readonly sessionId: string;
}

/**
 * The key another user's device may have forwarded for this session, if any: the session is this
 * device's current outbound session in the room, it was given to that device under the same
 * identity keys, and a share now would still give it the key (see `OutboundSessions.sharedKeyFor`).
 */
export type SharedKeyLookup = (request: SharedKeyRequest) => Promise<SharedRoomKey | undefined>;

/**
 * An answer to another user's device is queued (or waits) once per device and session, whatever
 * the request IDs: a device asking again and again while its answer waits costs nothing more.
 */
const sharedAnswerKey = (r: SharedKeyRequest): string =>
  JSON.stringify([r.userId, r.deviceId, r.roomId, r.sessionId]);

export class KeyRequests {
  readonly #ctx: MachineContext;
  readonly #devices: DeviceManager;
  readonly #crossSigning: CrossSigning;
  readonly #olm: OlmSessions;
  readonly #inbound: InboundSessions;
  readonly #sharedKeys: SharedKeyLookup;
  /** Oldest first. */
  readonly #outgoing = new Map<string, OutgoingKeyRequestRecord>();
  /** Request ID → the sender of the event that made us ask (memory only). */
  readonly #senders = new Map<string, string>();
  /** `[roomId, sessionId]` → request ID. */
  readonly #bySession = new Map<string, string>();
  readonly #pendingAnswers = new Map<string, PendingAnswer>();
  readonly #held: HeldKeyRequests;
  /** The machine's saved to-device queue (see to-device-queue.ts). */
  readonly #queued: ToDeviceQueue;
  /**
   * Our requests whose message was handed out for sending: it may be on its way even while still
   * queued, so one withdrawn is cancelled. Outstanding requests only (`MAX_OUTGOING_KEY_REQUESTS`).
   */
  readonly #handedOut = new Set<string>();
  /** Answers to other users' devices (`MAX_KEY_ANSWERS_PER_SESSION`, `MAX_KEY_ANSWERS_PER_DEVICE`). */
  readonly #answerRate: KeyAnswerRate;

  constructor(
    ctx: MachineContext,
    devices: DeviceManager,
    crossSigning: CrossSigning,
    olm: OlmSessions,
    inbound: InboundSessions,
    held: HeldKeyRequests,
    queued: ToDeviceQueue,
    sharedKeys: SharedKeyLookup,
  ) {
    this.#ctx = ctx;
    this.#sharedKeys = sharedKeys;
    this.#queued = queued;
    this.#devices = devices;
    this.#crossSigning = crossSigning;
    this.#olm = olm;
    this.#inbound = inbound;
    this.#held = held;
    this.#answerRate = new KeyAnswerRate(() => ctx.now());
  }

  /** Whether one of our devices is verified: marked so, or cross-signed by our trusted identity. */
  async #verified(device: DeviceRecord): Promise<boolean> {
    if (device.deleted || device.trust === "blacklisted") return false;
    const identity = await this.#crossSigning.identity(device.userId);
    return this.#crossSigning.deviceTrust(device, identity).verified;
  }

  async load(): Promise<void> {
    const stored = await this.#ctx.store.getOutgoingKeyRequests();
    stored.sort((a, b) => a.createdAt - b.createdAt);
    for (const r of stored) this.#remember(r, UNKNOWN_SENDER);
    // Queued by an earlier run, which may have handed them out before it stopped.
    for (const q of this.#queued.values()) if (q.keyRequest !== undefined) this.handedOut(q.keyRequest);
  }

  #find(roomId: string, sessionId: string): OutgoingKeyRequestRecord | undefined {
    // Asked for every key an import or restore brings: most often none is outstanding.
    if (this.#bySession.size === 0) return undefined;
    const id = this.#bySession.get(JSON.stringify([roomId, sessionId]));
    return id === undefined ? undefined : this.#outgoing.get(id);
  }

  #remember(r: OutgoingKeyRequestRecord, sender: string): void {
    this.#outgoing.set(r.requestId, r);
    this.#senders.set(r.requestId, sender);
    this.#bySession.set(JSON.stringify([r.roomId, r.sessionId]), r.requestId);
  }

  #forget(r: OutgoingKeyRequestRecord): void {
    this.#handedOut.delete(r.requestId);
    this.#outgoing.delete(r.requestId);
    this.#senders.delete(r.requestId);
    this.#bySession.delete(JSON.stringify([r.roomId, r.sessionId]));
  }

  #queue(eventType: string, messages: ToDeviceRequest["body"]["messages"], tag: QueueTag): void {
    const request: ToDeviceRequest = { id: newRequestId(), type: "to_device", eventType, body: { messages } };
    queueToDevice(this.#ctx, request, tag);
  }

  /**
   * Drops a request without telling anyone (our devices answer it or forget it themselves); its
   * message too, if still queued.
   */
  #drop(r: OutgoingKeyRequestRecord): void {
    this.#forget(r);
    this.#ctx.tx.deletedOutgoingKeyRequests.push(r.requestId);
    withdrawKeyRequest(this.#ctx, this.#queued, r.requestId);
  }

  #expire(): void {
    const cutoff = this.#ctx.now() - KEY_REQUEST_LIFETIME_MS;
    for (const r of this.#outgoing.values()) {
      if (r.createdAt > cutoff) break; // oldest first
      this.#drop(r);
    }
  }

  /**
   * If `within` holds `limit` requests or more, drops the oldest request of the sender with the
   * most of them there (so the sender flooding a bucket pays for it, not the others).
   */
  #makeRoom(within: (r: OutgoingKeyRequestRecord) => boolean, limit: number): void {
    const bySender = new Map<string, OutgoingKeyRequestRecord[]>();
    let count = 0;
    for (const r of this.#outgoing.values()) {
      if (!within(r)) continue;
      count++;
      const sender = this.#senders.get(r.requestId) ?? UNKNOWN_SENDER;
      const list = bySender.get(sender);
      if (list === undefined) bySender.set(sender, [r]);
      else list.push(r);
    }
    if (count < limit) return;
    let largest: OutgoingKeyRequestRecord[] = [];
    for (const list of bySender.values()) if (list.length > largest.length) largest = list;
    const oldest = largest[0];
    if (oldest !== undefined) this.#drop(oldest);
  }

  /**
   * Asks our other devices for a session we lack (once per session), for an event `sender` sent.
   * The table is bounded overall, per room and per sender; see `MAX_OUTGOING_KEY_REQUESTS`.
   */
  request(roomId: string, sessionId: string, senderKey: string | undefined, sender: string): void {
    this.#expire();
    if (this.#find(roomId, sessionId) !== undefined) return;
    this.#makeRoom((r) => this.#senders.get(r.requestId) === sender, MAX_KEY_REQUESTS_PER_SENDER);
    this.#makeRoom((r) => r.roomId === roomId, MAX_KEY_REQUESTS_PER_ROOM);
    this.#makeRoom(() => true, MAX_OUTGOING_KEY_REQUESTS);
    const record: OutgoingKeyRequestRecord = {
      requestId: newRequestId(),
      roomId,
      sessionId,
      senderKey: senderKey ?? "",
      recipients: [{ userId: this.#ctx.userId, deviceId: "*" }],
      state: "unsent",
      createdAt: this.#ctx.now(),
    };
    this.#remember(record, sender);
    this.#ctx.tx.outgoingKeyRequests.push(record);
    this.#queue(
      "m.room_key_request",
      {
        [this.#ctx.userId]: {
          "*": {
            action: "request",
            request_id: record.requestId,
            requesting_device_id: this.#ctx.deviceId,
            // sender_key is deprecated (spec v1.3): sent only when the event still carried one.
            body: {
              algorithm: MEGOLM_ALGORITHM,
              room_id: roomId,
              session_id: sessionId,
              ...(senderKey === undefined ? {} : { sender_key: senderKey }),
            },
          },
        },
      },
      { keyRequest: record.requestId },
    );
  }

  /** The message of our request `requestId` was handed out for sending. */
  handedOut(requestId: string): void {
    if (this.#outgoing.has(requestId)) this.#handedOut.add(requestId);
  }

  /**
   * A key arrived by any route: withdraw our request for it, and cancel it once it may have gone
   * out (sent, or handed out for sending: marking it sent later changes nothing).
   */
  keyArrived(update: RoomKeyUpdate): void {
    const record = this.#find(update.roomId, update.sessionId);
    if (record === undefined) return;
    const handedOut = this.#handedOut.has(record.requestId);
    this.#forget(record);
    this.#ctx.tx.deletedOutgoingKeyRequests.push(record.requestId);
    if (withdrawKeyRequest(this.#ctx, this.#queued, record.requestId) && !handedOut) return;
    const reply = JSON.stringify(["m.room_key_request", "cancel", record.requestId]);
    if (!mayQueueReply(this.#ctx, this.#queued, reply)) return;
    this.#queue(
      "m.room_key_request",
      {
        [this.#ctx.userId]: {
          "*": {
            action: "request_cancellation",
            request_id: record.requestId,
            requesting_device_id: this.#ctx.deviceId,
          },
        },
      },
      { reply },
    );
  }

  hasOutstanding(roomId: string, sessionId: string): boolean {
    return this.#find(roomId, sessionId) !== undefined;
  }

  /**
   * An `m.room_key_request` to-device event. Our own verified devices (marked so, or cross-signed
   * by our trusted identity) are answered; requests of our own devices that are not verified (or
   * not known yet) for a key we hold are held until the device is verified, and returned so the
   * application can ask the user. Those of blacklisted or deleted devices are ignored. Another
   * user's device is answered only with a key this device created and gave it (see
   * `SharedKeyLookup`), from the index it was given; any other request of theirs is ignored.
   */
  async receiveRequest(
    sender: string,
    content: Record<string, unknown>,
  ): Promise<HeldKeyRequest | undefined> {
    const parsed = requestSchema.safeParse(content);
    if (!parsed.success) return undefined;
    if (sender !== this.#ctx.userId) {
      await this.#receiveOthersRequest(sender, parsed.data);
      return undefined;
    }
    if (parsed.data.requesting_device_id === this.#ctx.deviceId) return undefined;
    const { requesting_device_id: deviceId, request_id: requestId } = parsed.data;
    const key = JSON.stringify([deviceId, requestId]);
    if (parsed.data.action === "request_cancellation") {
      this.#pendingAnswers.delete(key);
      this.#held.cancel(deviceId, requestId);
      return undefined;
    }
    const body = parsed.data.body;
    if (body === undefined || body.algorithm !== MEGOLM_ALGORITHM) return undefined;
    const device = await this.#devices.device(sender, deviceId);
    if (device?.deleted === true || device?.trust === "blacklisted") return undefined;
    if (device === undefined || !(await this.#verified(device))) {
      // Worth holding only for a key we have. An unknown device is looked up, so that it can be
      // verified (a new device asks for keys before we have queried its keys).
      if ((await this.#inbound.get(body.room_id, body.session_id)) === undefined) return undefined;
      if (device === undefined) this.#devices.markOutdated([sender]);
      const held = { deviceId, requestId, roomId: body.room_id, sessionId: body.session_id };
      return this.#held.hold(held) ? held : undefined;
    }
    await this.#answerOrWait(key, { device, roomId: body.room_id, sessionId: body.session_id, requestId });
    return undefined;
  }

  /**
   * Another user's request: answered if it may be (`#answerShared`); lacking an Olm session with
   * the device, left to wait for one (`MAX_PENDING_KEY_ANSWERS`, one per device and session).
   */
  async #receiveOthersRequest(sender: string, request: z.infer<typeof requestSchema>): Promise<void> {
    const { requesting_device_id: deviceId, request_id: requestId, body } = request;
    if (request.action === "request_cancellation") {
      for (const [key, a] of this.#pendingAnswers) {
        if (a.device.userId === sender && a.device.deviceId === deviceId && a.requestId === requestId) {
          this.#pendingAnswers.delete(key);
        }
      }
      return;
    }
    if (body === undefined || body.algorithm !== MEGOLM_ALGORITHM) return;
    const asked = { userId: sender, deviceId, roomId: body.room_id, sessionId: body.session_id };
    const device = await this.#answerShared(asked);
    if (device !== undefined && this.#pendingAnswers.size < MAX_PENDING_KEY_ANSWERS) {
      this.#pendingAnswers.set(sharedAnswerKey(asked), {
        device,
        roomId: asked.roomId,
        sessionId: asked.sessionId,
        requestId,
      });
    }
  }

  async #answerOrWait(key: string, answer: PendingAnswer): Promise<void> {
    if (!(await this.#answer(answer)) && this.#pendingAnswers.size < MAX_PENDING_KEY_ANSWERS) {
      this.#pendingAnswers.set(key, answer);
    }
  }

  /**
   * One of our devices changed trust: once verified (marked so, or cross-signed by our trusted
   * identity), its held requests are answered (those waiting for an Olm session join the other
   * pending answers); once blacklisted or deleted, dropped; otherwise they stay held.
   */
  async trustChanged(device: DeviceRecord): Promise<void> {
    if (device.userId !== this.#ctx.userId) return;
    if (device.trust === "blacklisted" || device.deleted) {
      this.#held.take(device.deviceId);
      return;
    }
    if (!(await this.#verified(device))) return;
    for (const h of this.#held.take(device.deviceId)) {
      const key = JSON.stringify([h.deviceId, h.requestId]);
      await this.#answerOrWait(key, {
        device,
        roomId: h.roomId,
        sessionId: h.sessionId,
        requestId: h.requestId,
      });
    }
  }

  /**
   * Device keys or cross-signing signatures were updated (a `/keys/query` answer): held requests
   * are judged again, so that a device of ours now verified through our cross-signing (verified by
   * another device of ours, or set up with the recovery key) is answered with no trust call here,
   * and one now blacklisted or deleted has its requests dropped; any other stays held.
   */
  async keysUpdated(): Promise<void> {
    const deviceIds = new Set(this.#held.list().map((h) => h.deviceId));
    for (const deviceId of deviceIds) {
      const device = await this.#devices.device(this.#ctx.userId, deviceId);
      if (device !== undefined) await this.trustChanged(device);
    }
  }

  /** Devices we owe an answer but have no Olm session with. */
  devicesAwaitingSession(): DeviceRecord[] {
    return [...this.#pendingAnswers.values()].map((a) => a.device);
  }

  /**
   * Retries answers that were waiting for an Olm session; one for a device of ours no longer
   * verified (blacklisted, unset, deleted) is dropped, and so is one for another user's device
   * that a share would no longer give the key (`#answerShared` judges it again).
   */
  async retryPendingAnswers(): Promise<void> {
    for (const [key, answer] of this.#pendingAnswers) {
      const device = await this.#devices.device(answer.device.userId, answer.device.deviceId);
      const own = answer.device.userId === this.#ctx.userId;
      if (device === undefined || device.deleted || (own && !(await this.#verified(device)))) {
        this.#pendingAnswers.delete(key);
        continue;
      }
      if (await this.#answer({ ...answer, device })) this.#pendingAnswers.delete(key);
    }
  }

  /**
   * Returns false when we could not answer yet (no Olm session); true when answered or nothing to
   * send: no such key, an answer to this request already queued, or `MAX_QUEUED_REPLIES` queued.
   */
  async #answer(a: PendingAnswer): Promise<boolean> {
    if (a.device.userId !== this.#ctx.userId) {
      const { userId, deviceId } = a.device;
      return (
        (await this.#answerShared({ userId, deviceId, roomId: a.roomId, sessionId: a.sessionId })) ===
        undefined
      );
    }
    const reply = JSON.stringify(["m.forwarded_room_key", a.device.deviceId, a.requestId]);
    if (!mayQueueReply(this.#ctx, this.#queued, reply)) return true;
    const entry = await this.#inbound.get(a.roomId, a.sessionId);
    if (entry === undefined) return true;
    const r = entry.record;
    const forwarded = {
      algorithm: MEGOLM_ALGORITHM,
      room_id: r.roomId,
      session_id: r.sessionId,
      session_key: entry.session.exportAtFirstKnownIndex(),
      sender_key: r.senderKey,
      sender_claimed_ed25519_key: r.senderClaimedEd25519,
      sender_claimed_keys: { ed25519: r.senderClaimedEd25519 },
      // A stored chain may be one longer than a forward may carry (it adds its forwarder): the last
      // entries go, so the receiver (with its own forwarder added) keeps as many as we did.
      forwarding_curve25519_key_chain: r.forwardingChain.slice(-MAX_FORWARDING_CHAIN),
    };
    const content = await this.#olm.encrypt(a.device, "m.forwarded_room_key", forwarded);
    if (content === undefined) return false;
    this.#queue(
      "m.room.encrypted",
      { [a.device.userId]: { [a.device.deviceId]: { ...content } } },
      { reply },
    );
    return true;
  }

  /**
   * Answers another user's device with the key from the index it was given, if it may have it
   * again (`SharedKeyLookup`); nothing otherwise. One answer queued per device and session
   * (`sharedAnswerKey`), within `MAX_QUEUED_REPLIES`, and `MAX_KEY_ANSWERS_PER_SESSION` a session,
   * `MAX_KEY_ANSWERS_PER_DEVICE` in all per `KEY_ANSWER_WINDOW_MS` (past them, nothing). Returns
   * the device when the answer must wait for an Olm session with it.
   */
  async #answerShared(asked: SharedKeyRequest): Promise<DeviceRecord | undefined> {
    const { userId, deviceId, roomId, sessionId } = asked;
    const reply = JSON.stringify(["m.forwarded_room_key", userId, deviceId, roomId, sessionId]);
    if (!mayQueueReply(this.#ctx, this.#queued, reply)) return undefined;
    if (!this.#answerRate.mayAnswer(userId, deviceId, roomId, sessionId)) return undefined;
    const key = await this.#sharedKeys(asked);
    if (key === undefined) return undefined;
    const forwarded = {
      algorithm: MEGOLM_ALGORITHM,
      room_id: asked.roomId,
      session_id: asked.sessionId,
      session_key: key.exported,
      sender_key: key.senderKey,
      sender_claimed_ed25519_key: key.senderClaimedEd25519,
      sender_claimed_keys: { ed25519: key.senderClaimedEd25519 },
      forwarding_curve25519_key_chain: [],
    };
    const { device } = key;
    const content = await this.#olm.encrypt(device, "m.forwarded_room_key", forwarded);
    if (content === undefined) return device;
    this.#queue("m.room.encrypted", { [device.userId]: { [device.deviceId]: { ...content } } }, { reply });
    this.#answerRate.answered(userId, deviceId, roomId, sessionId);
    return undefined;
  }

  /**
   * An Olm-decrypted `m.forwarded_room_key`. Accepted only if we asked for it and it came from a
   * verified device of our own (marked so, or cross-signed by our trusted identity); the session
   * is stored as forwarded.
   */
  async receiveForwardedKey(event: DecryptedOlmEvent): Promise<RoomKeyUpdate | undefined> {
    const device = event.device;
    if (device === undefined || device.userId !== this.#ctx.userId || !(await this.#verified(device)))
      return undefined;
    const parsed = forwardedSchema.safeParse(event.payload.content);
    if (!parsed.success) return undefined;
    const c = parsed.data;
    if (!this.hasOutstanding(c.room_id, c.session_id)) return undefined;
    let session: InboundGroupSession;
    try {
      session = InboundGroupSession.fromExport(c.session_key);
    } catch (e) {
      if (e instanceof MegolmError) return undefined;
      throw e;
    }
    if (session.sessionId !== c.session_id) return undefined;
    return this.#inbound.add(
      {
        roomId: c.room_id,
        senderKey: c.sender_key,
        senderClaimedEd25519: c.sender_claimed_ed25519_key,
        forwarded: true,
        imported: false,
        forwardingChain: [...c.forwarding_curve25519_key_chain, event.senderKey],
      },
      session,
    );
  }
}
