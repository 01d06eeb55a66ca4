/**
 * `OlmMachine.verification`: the application's handle on interactive verification. Every call
 * runs as one machine step (so it never interleaves with sync processing), reads the device keys
 * it needs from the store, and leaves what to send in the machine's outgoing requests (to-device)
 * or in `takeRoomMessages()` (room events, which the client encrypts and sends).
 */
import { isRecord } from "../../wire/json.ts";
import { isId } from "../limits.ts";
import type { MachineContext } from "../machine-context.ts";
import type { Parts, RunStep } from "../machine-parts.ts";
import type { ProcessedToDeviceEvent } from "../sync/to-device.ts";
import type { VerificationBridge, VerificationRoomMessage, VerificationUpdates } from "./bridge.ts";
import { VERIFICATION_EVENT_TYPES } from "./constants.ts";
import type { VerificationEnv } from "./env.ts";
import { VerificationError } from "./errors.ts";
import type { VerificationRoomEvent } from "./events.ts";
import type { VerificationSnapshot } from "./flow.ts";
import type { VerificationMachine } from "./machine.ts";

export type VerificationAction =
  | "accept"
  | "startSas"
  | "confirm"
  | "mismatch"
  | "cancel"
  | "confirmQrScanned"
  | "scanQr";

export class VerificationApi {
  readonly #ctx: MachineContext;
  readonly #bridge: VerificationBridge;
  readonly #run: RunStep;

  constructor(ctx: MachineContext, bridge: VerificationBridge, run: RunStep) {
    this.#ctx = ctx;
    this.#bridge = bridge;
    this.#run = run;
  }

  /**
   * Runs one call into the verification machine with a fresh key view, then collects its output.
   * The machine is loaded first if this is the first use (see `VerificationBridge`).
   */
  async #verify<T>(
    p: Parts,
    fn: (v: VerificationMachine, env: VerificationEnv, now: number) => T,
    users: Iterable<string> = [],
  ): Promise<T> {
    const bridge = this.#bridge;
    const machine = await bridge.load();
    const env = await bridge.env(this.#ctx, p, users);
    const result = fn(machine, env, this.#ctx.now());
    await bridge.settle(p);
    return result;
  }

  /** The verification events of one sync (called inside the sync step). */
  async receiveToDevice(p: Parts, events: readonly ProcessedToDeviceEvent[]): Promise<void> {
    const mine = events.filter((e) => VERIFICATION_EVENT_TYPES.has(e.type));
    if (mine.length === 0) return;
    await this.#verify(
      p,
      (v, env, now) => {
        for (const e of mine) {
          v.receiveToDevice(
            { type: e.type, sender: e.sender, content: e.content, senderDevice: e.encryption?.senderDevice },
            env,
            now,
          );
        }
      },
      mine.map((e) => e.sender),
    );
  }

  /**
   * Verification events a sync decrypted and held back (`SyncChanges.deferVerification`), handed
   * to the flows now, in order, as that sync's step would have. Anything but a to-device event
   * (a type, a sender ID, a content object; `senderDevice` a string if given) is ignored: a
   * plaintext one could carry the same, so the events' origin is not relied on beyond that.
   */
  receiveDeferredToDevice(events: readonly ProcessedToDeviceEvent[]): Promise<void> {
    const wellFormed = events.filter(
      (e) =>
        typeof e.type === "string" &&
        isId(e.sender) &&
        isRecord(e.content) &&
        (e.encryption === undefined || isRecord(e.encryption)) &&
        (e.encryption?.senderDevice === undefined || typeof e.encryption.senderDevice === "string"),
    );
    return this.#run((p) => this.receiveToDevice(p, wellFormed));
  }

  /** Device keys arrived (called inside the step that took a `/keys/query` answer). */
  async keysUpdated(p: Parts): Promise<void> {
    // No flow before the machine is loaded: nothing waits for keys.
    if (this.#bridge.machine === undefined) return;
    await this.#verify(p, (v, env, now) => v.keysUpdated(env, now));
  }

  /** A verification event from a room timeline (an in-room request, or a later event of a flow). */
  receiveRoomEvent(event: VerificationRoomEvent): Promise<void> {
    return this.#run((p) =>
      this.#verify(p, (v, env, now) => v.receiveRoomEvent(event, env, now), [event.sender]),
    );
  }

  /**
   * Requests verification over to-device with these devices of `userId` (by default all its known
   * devices but this one). Returns the flow.
   */
  request(userId: string, deviceIds?: readonly string[]): Promise<VerificationSnapshot> {
    return this.#run(async (p) => {
      const devices =
        deviceIds ??
        (await p.devices.devicesOf(userId))
          .filter((d) => !d.deleted && !(d.userId === this.#ctx.userId && d.deviceId === this.#ctx.deviceId))
          .map((d) => d.deviceId);
      if (devices.length === 0) throw new VerificationError("BAD_ARGUMENT", "no device to verify");
      const key = await this.#verify(p, (v, env, now) => v.requestToDevice(userId, devices, env, now), [
        userId,
      ]);
      return (await this.#bridge.load()).snapshot(key) as VerificationSnapshot;
    });
  }

  /** The content of an in-room request to `userId` (send it, then `verificationRoomRequestSent`). */
  roomRequestContent(userId: string): Promise<Record<string, unknown>> {
    return this.#run((p) => this.#verify(p, (v, env) => v.roomRequestContent(userId, env)));
  }

  roomRequestSent(roomId: string, eventId: string, userId: string): Promise<VerificationSnapshot> {
    return this.#run(async (p) => {
      const key = await this.#verify(
        p,
        (v, env, now) => v.roomRequestSent(roomId, eventId, userId, env, now),
        [userId],
      );
      return (await this.#bridge.load()).snapshot(key) as VerificationSnapshot;
    });
  }

  /** SAS with one device without a request first (the older to-device flow, e.g. for matrix-nio). */
  startSasWithoutRequest(userId: string, deviceId: string): Promise<VerificationSnapshot> {
    return this.#run(async (p) => {
      const key = await this.#verify(
        p,
        (v, env, now) => v.startSasWithoutRequest(userId, deviceId, env, now),
        [userId],
      );
      return (await this.#bridge.load()).snapshot(key) as VerificationSnapshot;
    });
  }

  /** A user action on a flow. `scanQr` takes the scanned bytes. */
  act(key: string, action: VerificationAction, bytes?: Uint8Array): Promise<VerificationSnapshot> {
    return this.#run(async (p) => {
      await this.#verify(p, (v, env, now) => {
        switch (action) {
          case "accept":
            return v.accept(key, env, now);
          case "startSas":
            return v.startSas(key, env, now);
          case "confirm":
            return v.confirm(key, env, now);
          case "mismatch":
            return v.mismatch(key, now);
          case "cancel":
            return v.cancel(key, now);
          case "confirmQrScanned":
            return v.confirmQrScanned(key, now);
          case "scanQr":
            return v.scanQr(key, bytes ?? new Uint8Array(0), env, now);
        }
      });
      return (await this.#bridge.load()).snapshot(key) as VerificationSnapshot;
    });
  }

  /** The QR code to show for a flow (undefined when it cannot be shown). */
  qrBytes(key: string): Promise<Uint8Array | undefined> {
    return this.#run((p) => this.#verify(p, (v, env) => v.qrBytes(key, env)));
  }

  /** Applies the clock: flows past their time are cancelled (`m.timeout`). */
  tick(): Promise<void> {
    return this.#run(async (p) => {
      // No flow to time out before the machine is loaded.
      if (this.#bridge.machine === undefined) return;
      await this.#verify(p, (v, _env, now) => v.tick(now));
    });
  }

  get(key: string): VerificationSnapshot | undefined {
    return this.#bridge.machine?.snapshot(key);
  }

  list(): VerificationSnapshot[] {
    return this.#bridge.machine?.list() ?? [];
  }

  /** Flows that changed, and new incoming requests, since the last call. */
  takeUpdates(): VerificationUpdates {
    return this.#bridge.takeUpdates();
  }

  /** Room events the flows want sent (the client sends them, encrypted when the room is). */
  takeRoomMessages(): VerificationRoomMessage[] {
    return this.#bridge.takeRoomMessages();
  }
}
