/**
 * One verification flow: the framework (request → ready → start → … → done, or cancel) around a
 * SAS exchange or a QR code. Each phase accepts only what the spec allows there; anything else
 * cancels with the spec's code. Sans-I/O: events and user actions in, events to send out through
 * `send`, the time passed in as `now`.
 */
import { compareCodePoints } from "../../crypto/json/index.ts";
import type { SasEmoji } from "../../crypto/sas/index.ts";
import {
  type CancelCode,
  EVENT_ACCEPT,
  EVENT_CANCEL,
  EVENT_DONE,
  EVENT_KEY,
  EVENT_MAC,
  EVENT_READY,
  EVENT_REQUEST,
  EVENT_START,
  METHOD_QR_SCAN,
  METHOD_QR_SHOW,
  METHOD_RECIPROCATE,
  METHOD_SAS,
  SAS_EVENT_TIMEOUT_MS,
  SAS_TIMEOUT_MS,
  VERIFICATION_TIMEOUT_MS,
} from "./constants.ts";
import { parseCancel, parseReady, parseStart, type StartContent } from "./content.ts";
import type { VerificationEnv, VerifiedKeys } from "./env.ts";
import { VerificationError } from "./errors.ts";
import { decodeQrCode, encodeQrCode, type QrCodeData } from "./qr-code.ts";
import { checkScanned, qrToShow, secretMatches, shownVerifies } from "./qr-flow.ts";
import { type MacKeys, SasFlow, type SasStage, type SasStep } from "./sas-flow.ts";

export type FlowPhase = "requested" | "ready" | "started" | "done" | "cancelled";
export type Transport = { readonly kind: "to_device" } | { readonly kind: "room"; readonly roomId: string };
/** Sends one event of a flow: the full content, and for to-device the devices it goes to. */
export type FlowSend = (type: string, content: Record<string, unknown>, devices: readonly string[]) => void;

export interface FlowInit {
  readonly key: string;
  readonly flowId: string;
  readonly otherUser: string;
  readonly transport: Transport;
  /** The other side made the request (or started without one). */
  readonly incoming: boolean;
  /** Begun with a request (false: the older start-without-request flow, to-device only). */
  readonly viaRequest: boolean;
  readonly createdAt: number;
  readonly ourMethods: readonly string[];
  readonly theirMethods?: readonly string[];
  readonly otherDevice?: string;
  /** To-device requests we sent: the devices they went to. */
  readonly requestedDevices?: readonly string[];
}

/** A flow as the application sees it. */
export interface VerificationSnapshot {
  readonly key: string;
  readonly flowId: string;
  readonly otherUserId: string;
  readonly otherDeviceId: string | undefined;
  readonly roomId: string | undefined;
  readonly incoming: boolean;
  readonly phase: FlowPhase;
  /** Methods both sides support (once the other side said which). */
  readonly methods: readonly string[];
  readonly sas:
    | {
        readonly stage: SasStage;
        readonly emoji: SasEmoji[] | undefined;
        readonly decimals: [number, number, number] | undefined;
      }
    | undefined;
  /** `reciprocated`: the other device scanned our code; our user should confirm. */
  readonly qr: "none" | "shown" | "reciprocated" | "scanned";
  readonly cancel: { readonly code: string; readonly reason: string; readonly byUs: boolean } | undefined;
  readonly verified: VerifiedKeys | undefined;
  /** Waiting for the other device's keys from `/keys/query` before it can go on. */
  readonly needsKeys: boolean;
}

export class VerificationFlow {
  readonly key: string;
  readonly flowId: string;
  readonly otherUser: string;
  readonly transport: Transport;
  readonly incoming: boolean;
  readonly viaRequest: boolean;
  readonly createdAt: number;
  readonly #send: FlowSend;
  readonly #ourMethods: readonly string[];
  #theirMethods: readonly string[];
  #otherDevice: string | undefined;
  readonly #requestedDevices: readonly string[];
  #phase: FlowPhase;
  #lastEventAt: number;
  #endedAt = 0;
  #sas: SasFlow | undefined;
  #sasStartedAt = 0;
  #pendingTheirStart: { start: StartContent; raw: Record<string, unknown> } | undefined;
  #pendingOurSas = false;
  #qrShown: QrCodeData | undefined;
  #qr: VerificationSnapshot["qr"] = "none";
  #doneSent = false;
  #theirDone = false;
  #verified: VerifiedKeys | undefined;
  #cancel: VerificationSnapshot["cancel"];

  constructor(init: FlowInit, send: FlowSend) {
    this.key = init.key;
    this.flowId = init.flowId;
    this.otherUser = init.otherUser;
    this.transport = init.transport;
    this.incoming = init.incoming;
    this.viaRequest = init.viaRequest;
    this.createdAt = init.createdAt;
    this.#lastEventAt = init.createdAt;
    this.#send = send;
    this.#ourMethods = init.ourMethods;
    this.#theirMethods = init.theirMethods ?? [];
    this.#otherDevice = init.otherDevice;
    this.#requestedDevices = init.requestedDevices ?? [];
    this.#phase = init.viaRequest ? "requested" : "ready";
  }

  get phase(): FlowPhase {
    return this.#phase;
  }
  get otherDevice(): string | undefined {
    return this.#otherDevice;
  }
  get finished(): boolean {
    return this.#phase === "done" || this.#phase === "cancelled";
  }
  get endedAt(): number {
    return this.#endedAt;
  }
  get needsKeys(): boolean {
    // Our waiting start is moot once the exchange began otherwise (their start, a QR code).
    return this.#pendingTheirStart !== undefined || (this.#pendingOurSas && this.#phase === "ready");
  }

  snapshot(): VerificationSnapshot {
    const sas = this.#sas;
    return {
      key: this.key,
      flowId: this.flowId,
      otherUserId: this.otherUser,
      otherDeviceId: this.#otherDevice,
      roomId: this.transport.kind === "room" ? this.transport.roomId : undefined,
      incoming: this.incoming,
      phase: this.#phase,
      methods: this.#ourMethods.filter((m) => this.#theirMethods.includes(m)),
      sas: sas === undefined ? undefined : { stage: sas.stage, emoji: sas.emoji(), decimals: sas.decimals() },
      qr: this.#qr,
      cancel: this.#cancel,
      verified: this.#verified,
      needsKeys: this.needsKeys,
    };
  }

  // ---- sending ----

  /** The content with its flow ID: `transaction_id` to-device, an `m.reference` relation in rooms. */
  #full(content: Record<string, unknown>): Record<string, unknown> {
    if (this.transport.kind === "to_device") return { ...content, transaction_id: this.flowId };
    return { ...content, "m.relates_to": { rel_type: "m.reference", event_id: this.flowId } };
  }

  #recipients(): readonly string[] {
    return this.#otherDevice !== undefined ? [this.#otherDevice] : this.#requestedDevices;
  }

  #emit(
    type: string,
    content: Record<string, unknown>,
    devices = this.#recipients(),
  ): Record<string, unknown> {
    const full = this.#full(content);
    this.#send(type, full, devices);
    return full;
  }

  #cancelWith(code: CancelCode, reason: string, now: number): void {
    if (this.finished) return;
    this.#emit(EVENT_CANCEL, { code, reason });
    this.#end("cancelled", now);
    this.#cancel = { code, reason, byUs: true };
  }

  #end(phase: "done" | "cancelled", now: number): void {
    this.#phase = phase;
    this.#endedAt = now;
    this.#pendingTheirStart = undefined;
    this.#pendingOurSas = false;
  }

  // ---- incoming ----

  /**
   * One event of this flow from the other user. `senderDevice` is the sending device when the
   * transport tells it (a decrypted event); an event from another device than the one that took
   * part is ignored.
   */
  receive(
    type: string,
    content: Record<string, unknown>,
    senderDevice: string | undefined,
    env: VerificationEnv,
    now: number,
  ): void {
    if (this.finished) return;
    // (Another of the devices we asked accepting after the first, encrypted, included: it was told
    // m.accepted when the first accepted; see `#receiveReady`.)
    if (senderDevice !== undefined && this.#otherDevice !== undefined && senderDevice !== this.#otherDevice)
      return;
    this.#lastEventAt = now;
    switch (type) {
      case EVENT_CANCEL: {
        const c = parseCancel(content) ?? { code: "m.invalid_message", reason: "" };
        // Their other devices still show our request: tell them it is over.
        if (this.#otherDevice === undefined && this.#requestedDevices.length > 1) {
          this.#emit(EVENT_CANCEL, { code: "m.user", reason: "declined on another device" });
        }
        this.#end("cancelled", now);
        this.#cancel = { code: c.code, reason: c.reason, byUs: false };
        return;
      }
      case EVENT_REQUEST:
        return; // a repeat of the request that made this flow
      case EVENT_READY:
        this.#receiveReady(content, now);
        return;
      case EVENT_START:
        this.#receiveStart(content, env, now);
        return;
      case EVENT_ACCEPT:
      case EVENT_KEY:
      case EVENT_MAC: {
        if (this.#phase !== "started" || this.#sas === undefined) {
          this.#cancelWith("m.unexpected_message", `${type} outside a SAS exchange`, now);
          return;
        }
        this.#sasStep(this.#sas.receive(type, content, this.#macKeys(env)), env, now);
        return;
      }
      case EVENT_DONE:
        this.#receiveDone(now);
        return;
      default:
        this.#cancelWith("m.unexpected_message", `unknown verification event ${type}`, now);
        return;
    }
  }

  #receiveReady(content: Record<string, unknown>, now: number): void {
    // Another of the devices we asked accepted too, after the first (both their users' devices
    // answered at once): it was told another took it (m.accepted) when the first accepted, so it
    // is not told again, however often its ready comes; the flow with the first one goes on.
    const late = this.#phase !== "requested" && !this.incoming ? parseReady(content) : undefined;
    if (late !== undefined && late.from_device !== this.#otherDevice) return;
    if (this.#phase !== "requested" || this.incoming) {
      this.#cancelWith("m.unexpected_message", "a ready we did not ask for", now);
      return;
    }
    const ready = parseReady(content);
    if (ready === undefined) {
      this.#cancelWith("m.invalid_message", "malformed m.key.verification.ready", now);
      return;
    }
    const others = this.#requestedDevices.filter((d) => d !== ready.from_device);
    this.#otherDevice = ready.from_device;
    this.#theirMethods = ready.methods;
    this.#phase = "ready";
    // The spec: the request's other recipients learn that one device took it.
    if (this.transport.kind === "to_device" && others.length > 0) {
      this.#emit(EVENT_CANCEL, { code: "m.accepted", reason: "accepted on another device" }, others);
    }
  }

  #receiveStart(content: Record<string, unknown>, env: VerificationEnv, now: number): void {
    const start = parseStart(content);
    if (start === undefined) {
      this.#cancelWith("m.invalid_message", "malformed m.key.verification.start", now);
      return;
    }
    if (this.#otherDevice !== undefined && start.from_device !== this.#otherDevice) return;
    if (this.#phase === "started") {
      const ours = this.#sas;
      if (ours === undefined || !ours.weStarted || ours.stage !== "awaiting_accept") {
        this.#cancelWith("m.unexpected_message", "a start after the exchange began", now);
        return;
      }
      if (start.method !== METHOD_SAS) {
        this.#cancelWith("m.unexpected_message", "both sides started, with different methods", now);
        return;
      }
      // Both started at once: the lexicographically smaller user (then device) ID's start stands,
      // by code point (as UTF-8 bytes compare elsewhere; JS `<` compares UTF-16 code units).
      const weWin =
        env.userId !== this.otherUser
          ? compareCodePoints(env.userId, this.otherUser) < 0
          : compareCodePoints(env.deviceId, start.from_device) < 0;
      if (weWin) return;
      this.#sas = undefined;
    } else if (this.#phase !== "ready") {
      this.#cancelWith("m.unexpected_message", "a start before the request was accepted", now);
      return;
    }
    this.#otherDevice ??= start.from_device;
    this.#handleStart(start, content, env, now);
  }

  #handleStart(start: StartContent, raw: Record<string, unknown>, env: VerificationEnv, now: number): void {
    const otherDevice = this.#otherDevice as string;
    if (start.method === METHOD_SAS) {
      if (
        this.viaRequest &&
        !(this.#ourMethods.includes(METHOD_SAS) && this.#theirMethods.includes(METHOD_SAS))
      ) {
        this.#cancelWith("m.unknown_method", "SAS was not agreed in the request", now);
        return;
      }
      const theirKey = env.deviceKey(this.otherUser, otherDevice);
      if (theirKey === undefined) {
        // Their device keys are not fetched yet: the start waits for them (`keysUpdated`).
        this.#pendingTheirStart = { start, raw };
        return;
      }
      const sas = SasFlow.answer(this.#sasHost(env, otherDevice), start, raw, theirKey, this.viaRequest);
      if (!(sas instanceof SasFlow)) {
        this.#sasStep(sas, env, now);
        return;
      }
      this.#sas = sas;
      this.#phase = "started";
      this.#sasStartedAt = now;
      // Our accept (if it went out) is what we wait on, not their start (their keys took a while).
      this.#lastEventAt = now;
      return;
    }
    if (start.method === METHOD_RECIPROCATE) {
      if (this.#qrShown === undefined) {
        this.#cancelWith("m.unknown_method", "we showed no QR code", now);
        return;
      }
      if (!secretMatches(this.#qrShown, start.secret)) {
        this.#cancelWith("m.key_mismatch", "the QR code's secret does not match", now);
        return;
      }
      this.#phase = "started";
      this.#qr = "reciprocated";
      return;
    }
    this.#cancelWith("m.unknown_method", "unsupported verification method", now);
  }

  #receiveDone(now: number): void {
    if (this.#phase !== "started" || !this.viaRequest) {
      this.#cancelWith("m.unexpected_message", "a done before the verification", now);
      return;
    }
    if (this.#doneSent) {
      this.#end("done", now);
      return;
    }
    // The scanner is done before the shower's user confirmed the scan.
    if (this.#qr === "reciprocated") {
      this.#theirDone = true;
      return;
    }
    this.#cancelWith("m.unexpected_message", "a done before the verification", now);
  }

  // ---- SAS ----

  #sasHost(env: VerificationEnv, otherDevice: string) {
    return {
      flowId: this.flowId,
      ourUser: env.userId,
      ourDevice: env.deviceId,
      otherUser: this.otherUser,
      otherDevice,
      send: (type: string, content: Record<string, unknown>) => this.#emit(type, content),
    };
  }

  #macKeys(env: VerificationEnv): MacKeys {
    const ours: Record<string, string> = { [`ed25519:${env.deviceId}`]: env.ed25519 };
    // Only a master key this device trusts is vouched for: the published one may be the server's.
    const ourMaster = env.masterKey(env.userId);
    if (ourMaster !== undefined && env.ownMasterTrusted) ours[`ed25519:${ourMaster}`] = ourMaster;
    const theirs: Record<string, string> = {};
    const theirMaster = env.masterKey(this.otherUser);
    if (theirMaster !== undefined) theirs[`ed25519:${theirMaster}`] = theirMaster;
    const device = this.#otherDevice;
    return {
      ours,
      theirs,
      theirDeviceKey: device === undefined ? undefined : env.deviceKey(this.otherUser, device),
    };
  }

  #sasStep(step: SasStep, env: VerificationEnv, now: number): void {
    if (step.kind === "cancel") {
      this.#cancelWith(step.code, step.reason, now);
      return;
    }
    if (step.kind !== "verified") return;
    const device = this.#otherDevice as string;
    const deviceKey = env.deviceKey(this.otherUser, device) as string;
    const master = env.masterKey(this.otherUser);
    this.#verified = {
      devices: step.keyIds.includes(`ed25519:${device}`)
        ? [{ userId: this.otherUser, deviceId: device, ed25519: deviceKey }]
        : [],
      masterKeys:
        master !== undefined && step.keyIds.includes(`ed25519:${master}`)
          ? [{ userId: this.otherUser, key: master }]
          : [],
    };
    this.#sendDone(now);
  }

  /** Our side is verified: `done` (the older flow without a request ends with the MACs). */
  #sendDone(now: number): void {
    if (!this.viaRequest) {
      this.#end("done", now);
      return;
    }
    this.#emit(EVENT_DONE, {});
    this.#doneSent = true;
    if (this.#theirDone) this.#end("done", now);
  }

  // ---- user actions ----

  #require(ok: boolean, what: string): void {
    if (!ok)
      throw new VerificationError("WRONG_STATE", `${what} does not fit the flow's state (${this.#phase})`);
  }

  /** Accepts an incoming request (sends `ready`), or an incoming start without request. */
  accept(env: VerificationEnv, now: number): void {
    if (this.#phase === "requested" && this.incoming) {
      const methods = readyMethods(this.#ourMethods, this.#theirMethods);
      this.#emit(EVENT_READY, {
        from_device: env.deviceId,
        methods: methods.length > 0 ? methods : [...this.#ourMethods],
      });
      this.#phase = "ready";
      return;
    }
    this.#require(this.#sas?.stage === "accept_pending", "accept");
    // We wait for their key from now on, not from their start (our user took a while).
    this.#lastEventAt = now;
    this.#sasStep((this.#sas as SasFlow).accept(), env, now);
  }

  /** Starts SAS (waits for the other device's keys if they are not known yet). */
  startSas(env: VerificationEnv, now: number): void {
    this.#require(this.#phase === "ready" && this.#otherDevice !== undefined, "startSas");
    if (this.viaRequest && !this.#theirMethods.includes(METHOD_SAS)) {
      throw new VerificationError("WRONG_STATE", "the other device does not offer SAS");
    }
    const theirKey = env.deviceKey(this.otherUser, this.#otherDevice as string);
    if (theirKey === undefined) {
      this.#pendingOurSas = true;
      return;
    }
    this.#pendingOurSas = false;
    this.#sas = SasFlow.begin(this.#sasHost(env, this.#otherDevice as string), theirKey);
    this.#phase = "started";
    this.#sasStartedAt = now;
    this.#lastEventAt = now;
  }

  /** The user says the short strings match. */
  confirm(env: VerificationEnv, now: number): void {
    this.#require(this.#sas?.stage === "keys_exchanged", "confirm");
    this.#sasStep((this.#sas as SasFlow).confirm(this.#macKeys(env)), env, now);
  }

  /** The user says the short strings differ. */
  mismatch(now: number): void {
    this.#require(this.#sas !== undefined && !this.finished, "mismatch");
    this.#cancelWith("m.mismatched_sas", "the short authentication strings differ", now);
  }

  cancel(now: number, code: CancelCode = "m.user", reason = "cancelled by the user"): void {
    this.#cancelWith(code, reason, now);
  }

  /** The bytes of the QR code we show, once the other side can scan (undefined: not possible). */
  qrBytes(env: VerificationEnv): Uint8Array | undefined {
    if (!this.#ourMethods.includes(METHOD_QR_SHOW)) return undefined;
    // Our own request may show its code before the answer (the code needs no more than the flow
    // ID and keys; a reciprocate is still accepted only once the other side is ready).
    const early = this.#phase === "requested" && !this.incoming;
    if (!early && this.#phase !== "ready" && !(this.#phase === "started" && this.#qrShown !== undefined)) {
      return undefined;
    }
    if (!early && !this.#theirMethods.includes(METHOD_QR_SCAN) && this.#qrShown === undefined)
      return undefined;
    this.#qrShown ??= qrToShow(env, this.flowId, this.otherUser, this.#otherDevice);
    if (this.#qrShown === undefined) return undefined;
    if (this.#qr === "none") this.#qr = "shown";
    return encodeQrCode(this.#qrShown);
  }

  /** We scanned their code: checks it, reciprocates and sends done (or cancels on a mismatch). */
  scanQr(bytes: Uint8Array, env: VerificationEnv, now: number): void {
    this.#require(this.#phase === "ready" && this.#otherDevice !== undefined, "scanQr");
    const code = decodeQrCode(bytes);
    const check = checkScanned(env, code, this.flowId, this.otherUser, this.#otherDevice as string);
    if (!check.ok) {
      this.#cancelWith(check.code, check.reason, now);
      return;
    }
    this.#emit(EVENT_START, { from_device: env.deviceId, method: METHOD_RECIPROCATE, secret: code.secret });
    this.#phase = "started";
    this.#qr = "scanned";
    this.#verified = check.verified;
    this.#sendDone(now);
  }

  /** Our user saw the other device confirm the scan of our code. */
  confirmQrScanned(now: number): void {
    this.#require(
      this.#qr === "reciprocated" && this.#qrShown !== undefined && !this.finished,
      "confirmQrScanned",
    );
    this.#verified = shownVerifies(this.#qrShown as QrCodeData, this.otherUser, this.#otherDevice as string);
    this.#sendDone(now);
  }

  /** Another of our devices answered this in-room request: this device stands aside, silently. */
  handledElsewhere(now: number): void {
    if (this.finished) return;
    this.#end("cancelled", now);
    this.#cancel = { code: "m.accepted", reason: "handled on another device", byUs: false };
  }

  /** Device keys arrived: a start that waited for them goes on. */
  keysUpdated(env: VerificationEnv, now: number): void {
    if (this.finished || this.#otherDevice === undefined) return;
    if (env.deviceKey(this.otherUser, this.#otherDevice) === undefined) return;
    const pending = this.#pendingTheirStart;
    if (pending !== undefined) {
      this.#pendingTheirStart = undefined;
      this.#handleStart(pending.start, pending.raw, env, now);
    } else if (this.#pendingOurSas && this.#phase === "ready") {
      this.startSas(env, now);
    }
  }

  /** Cancels with `m.timeout` when a limit passed; true if it did. */
  tick(now: number): boolean {
    if (this.finished) return false;
    const sas = this.#sas;
    const late =
      now - this.createdAt > VERIFICATION_TIMEOUT_MS ||
      (sas !== undefined &&
        (now - this.#sasStartedAt > SAS_TIMEOUT_MS ||
          (sas.waitingForThem && now - this.#lastEventAt > SAS_EVENT_TIMEOUT_MS)));
    if (late) this.#cancelWith("m.timeout", "the verification timed out", now);
    return late;
  }
}

/**
 * Our methods that fit the request's: SAS when both do it; scanning when they show, showing when
 * they scan (the spec's QR code step), and `m.reciprocate.v1` with either. Not the plain
 * intersection: a device that only shows a code must learn that we can scan it.
 */
function readyMethods(ours: readonly string[], theirs: readonly string[]): string[] {
  const fits = (m: string): boolean => {
    if (m === METHOD_QR_SCAN) return theirs.includes(METHOD_QR_SHOW);
    if (m === METHOD_QR_SHOW) return theirs.includes(METHOD_QR_SCAN);
    return theirs.includes(m);
  };
  const qr = ours.some((m) => (m === METHOD_QR_SCAN || m === METHOD_QR_SHOW) && fits(m));
  return ours.filter((m) => (m === METHOD_RECIPROCATE ? qr && fits(m) : fits(m)));
}
