/**
 * `VerificationMachine`: every verification flow of one device, sans-I/O. The driver feeds it the
 * verification events of each sync (to-device, and room events of DMs), user actions and the time;
 * it keeps the flows (bounded), routes events to them and collects what to send.
 */
import { encodeBase64Url, randomBytes } from "../../crypto/primitives/index.ts";
import { isRecord } from "../../wire/json.ts";
import {
  EVENT_REQUEST,
  EVENT_START,
  FINISHED_FLOW_RETENTION_MS,
  MAX_FLOWS_PER_USER,
  MAX_REQUEST_AGE_MS,
  MAX_REQUEST_SKEW_MS,
  MAX_VERIFICATION_FLOWS,
  METHOD_QR_SCAN,
  METHOD_QR_SHOW,
  METHOD_RECIPROCATE,
  METHOD_SAS,
  VERIFICATION_EVENT_TYPES,
} from "./constants.ts";
import { isUserId, parseRequest, parseStart, roomFlowId, toDeviceFlowId } from "./content.ts";
import type { VerificationEnv } from "./env.ts";
import { VerificationError } from "./errors.ts";
import type { VerificationMessage, VerificationRoomEvent, VerificationToDeviceEvent } from "./events.ts";
import { type FlowInit, type Transport, VerificationFlow, type VerificationSnapshot } from "./flow.ts";

/** The body of an in-room request, for clients that do not know verification. */
const FALLBACK_BODY =
  "is requesting to verify your device, but your client does not support in-chat key verification.";

export class VerificationMachine {
  readonly #flows = new Map<string, VerificationFlow>();
  #outbox: VerificationMessage[] = [];
  #changed = new Set<string>();
  #incoming: string[] = [];

  static flowKey(otherUser: string, flowId: string): string {
    return `${otherUser}|${flowId}`;
  }

  /** The methods we offer: SAS always; QR when we have a cross-signing identity to show. */
  ourMethods(env: VerificationEnv): string[] {
    const methods = [METHOD_SAS];
    if (env.masterKey(env.userId) !== undefined)
      methods.push(METHOD_QR_SHOW, METHOD_QR_SCAN, METHOD_RECIPROCATE);
    return methods;
  }

  // ---- incoming ----

  receiveToDevice(ev: VerificationToDeviceEvent, env: VerificationEnv, now: number): void {
    if (!VERIFICATION_EVENT_TYPES.has(ev.type) || !isUserId(ev.sender) || !isRecord(ev.content)) return;
    const flowId = toDeviceFlowId(ev.content);
    if (flowId === undefined) return;
    const key = VerificationMachine.flowKey(ev.sender, flowId);
    const flow = this.#flows.get(key);
    if (flow !== undefined) {
      // An in-room flow takes only room events (its ID is an event ID, which a to-device event can name).
      if (flow.transport.kind !== "to_device") return;
      this.#touch(flow, () => flow.receive(ev.type, ev.content, ev.senderDevice, env, now));
      return;
    }
    if (ev.type === EVENT_REQUEST) {
      const request = parseRequest(ev.content);
      if (request === undefined || request.timestamp === undefined || !fresh(request.timestamp, now)) return;
      if (ev.sender === env.userId && request.from_device === env.deviceId) return;
      this.#admitIncoming({
        key,
        flowId,
        otherUser: ev.sender,
        transport: { kind: "to_device" },
        incoming: true,
        viaRequest: true,
        createdAt: Math.min(request.timestamp, now),
        ourMethods: this.ourMethods(env),
        theirMethods: request.methods,
        otherDevice: request.from_device,
      });
      return;
    }
    if (ev.type === EVENT_START) {
      // The older flow: a start without a request (still sent by some clients).
      const start = parseStart(ev.content);
      if (start === undefined || start.method !== METHOD_SAS) return;
      if (ev.sender === env.userId && start.from_device === env.deviceId) return;
      const created = this.#admitIncoming({
        key,
        flowId,
        otherUser: ev.sender,
        transport: { kind: "to_device" },
        incoming: true,
        viaRequest: false,
        createdAt: now,
        ourMethods: [METHOD_SAS],
        theirMethods: [METHOD_SAS],
        otherDevice: start.from_device,
      });
      created?.receive(ev.type, ev.content, ev.senderDevice, env, now);
    }
    // Anything else names a flow we do not have: ignored (a cancel there could be forged at will).
  }

  receiveRoomEvent(ev: VerificationRoomEvent, env: VerificationEnv, now: number): void {
    if (!isUserId(ev.sender) || !isRecord(ev.content)) return;
    if (ev.type === "m.room.message") {
      if (ev.content.msgtype !== EVENT_REQUEST || ev.sender === env.userId) return;
      const request = parseRequest(ev.content);
      if (request === undefined || ev.content.to !== env.userId || !fresh(ev.originServerTs, now)) return;
      this.#admitIncoming({
        key: VerificationMachine.flowKey(ev.sender, ev.eventId),
        flowId: ev.eventId,
        otherUser: ev.sender,
        transport: { kind: "room", roomId: ev.roomId },
        incoming: true,
        viaRequest: true,
        createdAt: Math.min(ev.originServerTs, now),
        ourMethods: this.ourMethods(env),
        theirMethods: request.methods,
        otherDevice: request.from_device,
      });
      return;
    }
    if (!VERIFICATION_EVENT_TYPES.has(ev.type) || ev.type === EVENT_REQUEST) return;
    const flowId = roomFlowId(ev.content);
    if (flowId === undefined) return;
    if (ev.sender === env.userId) {
      // Our own echo, or another of our devices answering: then this device stands aside.
      const from = ev.content.from_device;
      if (typeof from !== "string" || from === env.deviceId) return;
      for (const flow of this.#flows.values()) {
        if (flow.flowId === flowId && flow.transport.kind === "room" && flow.transport.roomId === ev.roomId) {
          this.#touch(flow, () => flow.handledElsewhere(now));
        }
      }
      return;
    }
    const flow = this.#flows.get(VerificationMachine.flowKey(ev.sender, flowId));
    if (flow === undefined || flow.transport.kind !== "room" || flow.transport.roomId !== ev.roomId) return;
    this.#touch(flow, () => flow.receive(ev.type, ev.content, ev.senderDevice, env, now));
  }

  // ---- starting flows ----

  /** Requests verification over to-device with these devices of `userId` (all of them get the request). */
  requestToDevice(userId: string, deviceIds: readonly string[], env: VerificationEnv, now: number): string {
    if (!isUserId(userId) || deviceIds.length === 0)
      throw new VerificationError("BAD_ARGUMENT", "a user and at least one device");
    const flowId = newFlowId();
    const methods = this.ourMethods(env);
    const flow = this.#admitOwn({
      flowId,
      otherUser: userId,
      transport: { kind: "to_device" },
      viaRequest: true,
      createdAt: now,
      ourMethods: methods,
      requestedDevices: [...deviceIds],
    });
    this.#outbox.push({
      kind: "to_device",
      eventType: EVENT_REQUEST,
      userId,
      deviceIds: [...deviceIds],
      content: { from_device: env.deviceId, methods, timestamp: now, transaction_id: flowId },
    });
    return flow.key;
  }

  /** The content of an in-room request to send (then `roomRequestSent` with its event ID). */
  roomRequestContent(userId: string, env: VerificationEnv): Record<string, unknown> {
    return {
      msgtype: EVENT_REQUEST,
      body: `${env.userId} ${FALLBACK_BODY}`,
      from_device: env.deviceId,
      methods: this.ourMethods(env),
      to: userId,
    };
  }

  /** Our in-room request went out as `eventId`: the flow begins. */
  roomRequestSent(
    roomId: string,
    eventId: string,
    userId: string,
    env: VerificationEnv,
    now: number,
  ): string {
    const flow = this.#admitOwn({
      flowId: eventId,
      otherUser: userId,
      transport: { kind: "room", roomId },
      viaRequest: true,
      createdAt: now,
      ourMethods: this.ourMethods(env),
    });
    return flow.key;
  }

  /** Starts SAS with one device without a request (the older to-device flow some clients still need). */
  startSasWithoutRequest(userId: string, deviceId: string, env: VerificationEnv, now: number): string {
    const flowId = newFlowId();
    const flow = this.#admitOwn({
      flowId,
      otherUser: userId,
      transport: { kind: "to_device" },
      viaRequest: false,
      createdAt: now,
      ourMethods: [METHOD_SAS],
      theirMethods: [METHOD_SAS],
      otherDevice: deviceId,
    });
    this.#touch(flow, () => flow.startSas(env, now));
    return flow.key;
  }

  // ---- user actions ----

  accept(key: string, env: VerificationEnv, now: number): void {
    const flow = this.#get(key);
    this.#touch(flow, () => flow.accept(env, now));
  }
  startSas(key: string, env: VerificationEnv, now: number): void {
    const flow = this.#get(key);
    this.#touch(flow, () => flow.startSas(env, now));
  }
  confirm(key: string, env: VerificationEnv, now: number): void {
    const flow = this.#get(key);
    this.#touch(flow, () => flow.confirm(env, now));
  }
  mismatch(key: string, now: number): void {
    const flow = this.#get(key);
    this.#touch(flow, () => flow.mismatch(now));
  }
  cancel(key: string, now: number): void {
    const flow = this.#get(key);
    this.#touch(flow, () => flow.cancel(now));
  }
  qrBytes(key: string, env: VerificationEnv): Uint8Array | undefined {
    const flow = this.#get(key);
    let bytes: Uint8Array | undefined;
    this.#touch(flow, () => {
      bytes = flow.qrBytes(env);
    });
    return bytes;
  }
  scanQr(key: string, bytes: Uint8Array, env: VerificationEnv, now: number): void {
    const flow = this.#get(key);
    this.#touch(flow, () => flow.scanQr(bytes, env, now));
  }
  confirmQrScanned(key: string, now: number): void {
    const flow = this.#get(key);
    this.#touch(flow, () => flow.confirmQrScanned(now));
  }

  // ---- time and keys ----

  /** Device keys were fetched: flows waiting for them go on. */
  keysUpdated(env: VerificationEnv, now: number): void {
    for (const flow of this.#flows.values())
      if (flow.needsKeys) this.#touch(flow, () => flow.keysUpdated(env, now));
  }

  /** Cancels flows past their time and forgets finished ones after `FINISHED_FLOW_RETENTION_MS`. */
  tick(now: number): void {
    for (const [key, flow] of this.#flows) {
      if (flow.finished) {
        if (now - flow.endedAt > FINISHED_FLOW_RETENTION_MS) this.#flows.delete(key);
      } else if (flow.tick(now)) {
        this.#changed.add(key);
      }
    }
  }

  /** Users whose device keys a flow waits for. */
  usersNeedingKeys(): string[] {
    return [
      ...new Set([...this.#flows.values()].filter((f) => f.needsKeys && !f.finished).map((f) => f.otherUser)),
    ];
  }

  // ---- reading ----

  snapshot(key: string): VerificationSnapshot | undefined {
    return this.#flows.get(key)?.snapshot();
  }
  list(): VerificationSnapshot[] {
    return [...this.#flows.values()].map((f) => f.snapshot());
  }
  get size(): number {
    return this.#flows.size;
  }
  /** Events to send, oldest first; each is handed out once. */
  takeOutgoing(): VerificationMessage[] {
    const out = this.#outbox;
    this.#outbox = [];
    return out;
  }
  /** Flows that changed since the last call. */
  takeChanged(): VerificationSnapshot[] {
    const keys = this.#changed;
    this.#changed = new Set();
    return [...keys].flatMap((k) => this.#flows.get(k)?.snapshot() ?? []);
  }
  /** Flows the other side began since the last call (requests to show the user). */
  takeIncoming(): VerificationSnapshot[] {
    const keys = this.#incoming;
    this.#incoming = [];
    return keys.flatMap((k) => this.#flows.get(k)?.snapshot() ?? []);
  }

  // ---- plumbing ----

  #get(key: string): VerificationFlow {
    const flow = this.#flows.get(key);
    if (flow === undefined) throw new VerificationError("UNKNOWN_FLOW", "no verification flow with this key");
    return flow;
  }

  #touch(flow: VerificationFlow, fn: () => void): void {
    try {
      fn();
    } finally {
      this.#changed.add(flow.key);
    }
  }

  #sender(transport: Transport, otherUser: string) {
    return (type: string, content: Record<string, unknown>, devices: readonly string[]) => {
      if (transport.kind === "room") {
        this.#outbox.push({
          kind: "room",
          roomId: transport.roomId,
          otherUserId: otherUser,
          eventType: type,
          content,
        });
      } else if (devices.length > 0) {
        this.#outbox.push({
          kind: "to_device",
          eventType: type,
          userId: otherUser,
          deviceIds: devices,
          content,
        });
      }
    };
  }

  /** Room for one more flow with this user: finished flows make way first. */
  #hasRoom(otherUser: string): boolean {
    const active = [...this.#flows.values()].filter((f) => !f.finished);
    if (active.filter((f) => f.otherUser === otherUser).length >= MAX_FLOWS_PER_USER) return false;
    if (this.#flows.size < MAX_VERIFICATION_FLOWS) return true;
    let oldest: VerificationFlow | undefined;
    for (const f of this.#flows.values())
      if (f.finished && (oldest === undefined || f.endedAt < oldest.endedAt)) oldest = f;
    if (oldest === undefined) return false;
    this.#flows.delete(oldest.key);
    return true;
  }

  #admitIncoming(init: FlowInit): VerificationFlow | undefined {
    if (this.#flows.has(init.key) || !this.#hasRoom(init.otherUser)) return undefined;
    const flow = new VerificationFlow(init, this.#sender(init.transport, init.otherUser));
    this.#flows.set(init.key, flow);
    this.#incoming.push(init.key);
    this.#changed.add(init.key);
    return flow;
  }

  #admitOwn(own: Omit<FlowInit, "key" | "incoming">): VerificationFlow {
    if (!this.#hasRoom(own.otherUser)) {
      throw new VerificationError("TOO_MANY_FLOWS", "too many verification flows at once");
    }
    const init: FlowInit = {
      ...own,
      key: VerificationMachine.flowKey(own.otherUser, own.flowId),
      incoming: false,
    };
    const flow = new VerificationFlow(init, this.#sender(init.transport, init.otherUser));
    this.#flows.set(init.key, flow);
    this.#changed.add(init.key);
    return flow;
  }
}

/** A request stamped more than 10 minutes ago or 5 minutes ahead is ignored. */
function fresh(timestamp: number, now: number): boolean {
  return now - timestamp <= MAX_REQUEST_AGE_MS && timestamp - now <= MAX_REQUEST_SKEW_MS;
}

function newFlowId(): string {
  return encodeBase64Url(randomBytes(18));
}
