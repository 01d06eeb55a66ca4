// Drives the E2EE machine's verification flows for the client: feeds it room events, sends what
// it queued (to-device through the request loop, room events through the send queue, encrypted
// in encrypted DMs), applies the clock, and keeps one `VerificationRequest` object per flow.
import type { OlmMachine, VerificationAction, VerificationSnapshot } from "../../e2ee/index.ts";
import { isVerificationEvent } from "../../e2ee/verification/events.ts";
import type { JsonObject } from "../../wire/index.ts";
import type { RoomEvent } from "../events/types.ts";
import { VerificationRequest } from "./request.ts";

/** How often the clock is applied while a flow is open (the spec's limits are a minute and more). */
export const VERIFICATION_TICK_MS = 1_000;

export interface VerificationHost {
  readonly userId: string;
  readonly machine: OlmMachine;
  /** Sends what the machine queued (to-device requests, key queries). */
  flush(): Promise<void>;
  /** Fetches a user's device list if it is not current. */
  refreshDevices(userId: string): Promise<void>;
  /** Sends a verification event of a flow with `partner` into a room (see `Sender.sendVerificationEvent`). */
  sendEvent(roomId: string, type: string, content: JsonObject, partner: string): Promise<string>;
  directRoomWith(userId: string): Promise<string>;
  emitRequest(request: VerificationRequest): void;
  reportError(error: unknown): void;
  /** Runs the work as one unit of work on the crypto store (its lease); inline when absent. */
  exclusive?<T>(work: () => Promise<T>): Promise<T>;
  /**
   * The verification event held for an encrypted event refused as `SENDER_NOT_CROSS_SIGNED`
   * (`ClientCrypto.takeRefusedVerificationEvent`): the flow takes it though the timeline does not.
   */
  refusedVerificationEvent?(
    roomId: string,
    eventId: string,
  ): { type: string; content: JsonObject; senderDeviceId: string | undefined } | undefined;
}

export class VerificationService {
  readonly #host: VerificationHost;
  readonly #requests = new Map<string, VerificationRequest>();
  /** Sends run one after another, in the order the machine queued them. */
  #chain: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(host: VerificationHost) {
    this.#host = host;
  }

  /**
   * Every room event of the timeline: verification ones go to the machine, those of a device the
   * room's sender requirement refuses included (held when they were decrypted): verifying is how
   * such a device comes to be trusted, and the flow's MACs, not the sender's trust, protect it.
   */
  onRoomEvent(event: RoomEvent): void {
    const enc = event.encryption;
    const refused =
      enc?.decrypted === false && enc.code === "SENDER_NOT_CROSS_SIGNED"
        ? this.#host.refusedVerificationEvent?.(event.roomId, event.eventId)
        : undefined;
    const type = refused?.type ?? event.type;
    const content = refused?.content ?? event.content;
    if (!isVerificationEvent(type, content)) return;
    const senderDevice =
      refused?.senderDeviceId ?? (enc?.decrypted === true ? enc.senderDeviceId : undefined);
    void this.#run(async () => {
      await this.#host.machine.verification.receiveRoomEvent({
        roomId: event.roomId,
        eventId: event.eventId,
        sender: event.sender,
        type,
        content,
        originServerTs: event.originServerTs,
        senderDevice,
      });
    });
  }

  /** A sync was processed: the machine may have taken to-device verification events. */
  onSync(): void {
    void this.#run(async () => undefined);
  }

  /**
   * Requests verification: to-device with our own devices (one, or all), in a DM with anyone else
   * (the existing DM, or a new encrypted one).
   */
  async request(userId: string, deviceId?: string): Promise<VerificationRequest> {
    const v = this.#host.machine.verification;
    let snapshot: VerificationSnapshot | undefined;
    await this.#run(async () => {
      await this.#host.refreshDevices(userId);
      if (userId === this.#host.userId) {
        snapshot = await v.request(userId, deviceId !== undefined ? [deviceId] : undefined);
        return;
      }
      const roomId = await this.#host.directRoomWith(userId);
      const content = await v.roomRequestContent(userId);
      const eventId = await this.#host.sendEvent(roomId, "m.room.message", content as JsonObject, userId);
      snapshot = await v.roomRequestSent(roomId, eventId, userId);
    });
    return this.#object(snapshot as VerificationSnapshot);
  }

  /** SAS with one device without a request (the older to-device flow; matrix-nio needs it). */
  async startSasWithoutRequest(userId: string, deviceId: string): Promise<VerificationRequest> {
    let snapshot: VerificationSnapshot | undefined;
    await this.#run(async () => {
      await this.#host.refreshDevices(userId);
      snapshot = await this.#host.machine.verification.startSasWithoutRequest(userId, deviceId);
    });
    return this.#object(snapshot as VerificationSnapshot);
  }

  /** The flows this device knows of (open and recently finished). */
  list(): VerificationRequest[] {
    return this.#host.machine.verification.list().map((s) => this.#object(s));
  }

  async act(key: string, action: VerificationAction, bytes?: Uint8Array): Promise<VerificationSnapshot> {
    let snapshot: VerificationSnapshot | undefined;
    await this.#run(async () => {
      snapshot = await this.#host.machine.verification.act(key, action, bytes);
    });
    return snapshot as VerificationSnapshot;
  }

  async qrBytes(key: string): Promise<Uint8Array | undefined> {
    let bytes: Uint8Array | undefined;
    await this.#run(async () => {
      bytes = await this.#host.machine.verification.qrBytes(key);
    });
    return bytes;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // ---- plumbing ----

  /** Runs `fn`, then sends what the machine queued and hands updates to the objects; serialised. */
  #run(fn: () => Promise<void>): Promise<void> {
    const unit = async () => {
      if (this.#closed) return;
      let failure: unknown;
      try {
        await fn();
      } catch (e) {
        failure = e;
      }
      try {
        await this.#pump();
      } catch (e) {
        this.#host.reportError(e);
      }
      if (failure !== undefined) throw failure;
    };
    const next = this.#chain.then(() => this.#host.exclusive?.(unit) ?? unit());
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #pump(): Promise<void> {
    const machine = this.#host.machine;
    // To-device events and the key queries a flow waits for go through the request loop; a
    // query's answer can let a waiting flow go on, which queues more: loop until quiet.
    for (let i = 0; i < 4; i++) {
      await this.#host.flush();
      const rooms = machine.verification.takeRoomMessages();
      for (const m of rooms) {
        await this.#host.sendEvent(m.roomId, m.eventType, m.content as JsonObject, m.otherUserId);
      }
      const { changed, incoming } = machine.verification.takeUpdates();
      for (const s of changed) this.#requests.get(s.key)?.update(s);
      for (const s of incoming) {
        if (this.#requests.has(s.key)) continue;
        this.#host.emitRequest(this.#object(s));
      }
      if (rooms.length === 0 && changed.length === 0 && incoming.length === 0) break;
    }
    this.#schedule();
  }

  /** Keeps the clock running while a flow is open. */
  #schedule(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const open = this.#host.machine.verification
      .list()
      .some((s) => s.phase !== "done" && s.phase !== "cancelled");
    if (!open) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run(() => this.#host.machine.verification.tick()).catch((e) => this.#host.reportError(e));
    }, VERIFICATION_TICK_MS);
    this.#timer.unref?.();
  }

  #object(s: VerificationSnapshot): VerificationRequest {
    let request = this.#requests.get(s.key);
    if (request === undefined) {
      request = new VerificationRequest(
        { act: (k, a, b) => this.act(k, a, b), qrBytes: (k) => this.qrBytes(k) },
        s,
      );
      this.#requests.set(s.key, request);
      // The objects of forgotten flows go with them.
      const known = new Set(this.#host.machine.verification.list().map((f) => f.key));
      for (const k of this.#requests.keys()) if (!known.has(k)) this.#requests.delete(k);
    }
    return request;
  }
}
