// A verification as the application holds it: the flow's current state, its events, and the user's
// actions. Every action is one call into the E2EE machine; what it sends goes out before it resolves.
import type { SasEmoji } from "../../crypto/sas/index.ts";
import type { VerificationAction, VerificationSnapshot, VerifiedKeys } from "../../e2ee/index.ts";
import { TypedEmitter } from "../events/emitter.ts";

export interface VerificationRequestEvents {
  /** Any change of state. */
  change: [snapshot: VerificationSnapshot];
  /** The short authentication string is known: compare it, then `confirm()` or `mismatch()`. */
  sas: [sas: { emoji: readonly SasEmoji[] | undefined; decimals: readonly [number, number, number] }];
  /** The other device scanned our QR code: ask the user, then `confirmQrScanned()`. */
  qrScanned: [];
  /** Verified: the devices (and identities) it proved are marked verified. */
  done: [verified: VerifiedKeys];
  /** Cancelled by either side (`byUs`) with the spec's code. */
  cancelled: [cancel: { code: string; reason: string; byUs: boolean }];
}

/** What a request needs from the service that drives it. */
export interface VerificationDriver {
  act(key: string, action: VerificationAction, bytes?: Uint8Array): Promise<VerificationSnapshot>;
  qrBytes(key: string): Promise<Uint8Array | undefined>;
}

export class VerificationRequest extends TypedEmitter<VerificationRequestEvents> {
  readonly #driver: VerificationDriver;
  #snapshot: VerificationSnapshot;
  #sasAnnounced = false;

  constructor(driver: VerificationDriver, snapshot: VerificationSnapshot) {
    super();
    this.#driver = driver;
    this.#snapshot = snapshot;
  }

  get key(): string {
    return this.#snapshot.key;
  }
  get flowId(): string {
    return this.#snapshot.flowId;
  }
  get otherUserId(): string {
    return this.#snapshot.otherUserId;
  }
  get otherDeviceId(): string | undefined {
    return this.#snapshot.otherDeviceId;
  }
  /** The DM the flow runs in; undefined for to-device flows. */
  get roomId(): string | undefined {
    return this.#snapshot.roomId;
  }
  /** The other side began it. */
  get incoming(): boolean {
    return this.#snapshot.incoming;
  }
  get phase(): VerificationSnapshot["phase"] {
    return this.#snapshot.phase;
  }
  get methods(): readonly string[] {
    return this.#snapshot.methods;
  }
  get emoji(): readonly SasEmoji[] | undefined {
    return this.#snapshot.sas?.emoji;
  }
  get decimals(): readonly [number, number, number] | undefined {
    return this.#snapshot.sas?.decimals;
  }
  get cancellation(): VerificationSnapshot["cancel"] {
    return this.#snapshot.cancel;
  }
  get verified(): VerifiedKeys | undefined {
    return this.#snapshot.verified;
  }
  get snapshot(): VerificationSnapshot {
    return this.#snapshot;
  }

  /** Accepts an incoming request (or an incoming SAS start without request). */
  accept(): Promise<void> {
    return this.#act("accept");
  }
  /** Starts SAS (emoji and decimals). */
  startSas(): Promise<void> {
    return this.#act("startSas");
  }
  /** The strings match. */
  confirm(): Promise<void> {
    return this.#act("confirm");
  }
  /** The strings differ: cancels with `m.mismatched_sas`. */
  mismatch(): Promise<void> {
    return this.#act("mismatch");
  }
  /** Cancels with `m.user`. */
  cancel(): Promise<void> {
    return this.#act("cancel");
  }
  /** The QR code to show (once the other side said it can scan), or undefined. */
  qrBytes(): Promise<Uint8Array | undefined> {
    return this.#driver.qrBytes(this.key);
  }
  /** The user scanned the other device's QR code: checks it and completes our side. */
  scanQr(bytes: Uint8Array): Promise<void> {
    return this.#act("scanQr", bytes);
  }
  /** The other user confirmed (on their device) that they scanned our code. */
  confirmQrScanned(): Promise<void> {
    return this.#act("confirmQrScanned");
  }

  /** Resolves once `predicate` holds for the state (checked now and at each change). */
  waitFor(predicate: (s: VerificationSnapshot) => boolean): Promise<VerificationSnapshot> {
    if (predicate(this.#snapshot)) return Promise.resolve(this.#snapshot);
    return new Promise((resolve) => {
      const off = this.on("change", (s) => {
        if (!predicate(s)) return;
        off();
        resolve(s);
      });
    });
  }

  /** Resolves when the flow ends (done or cancelled). */
  finished(): Promise<VerificationSnapshot> {
    return this.waitFor((s) => s.phase === "done" || s.phase === "cancelled");
  }

  async #act(action: VerificationAction, bytes?: Uint8Array): Promise<void> {
    await this.#driver.act(this.key, action, bytes);
  }

  /** @internal The service hands each new state here; events are emitted without blocking it. */
  update(next: VerificationSnapshot): void {
    const prev = this.#snapshot;
    this.#snapshot = next;
    void this.emit("change", next);
    const decimals = next.sas?.decimals;
    if (decimals !== undefined && !this.#sasAnnounced) {
      this.#sasAnnounced = true;
      void this.emit("sas", { emoji: next.sas?.emoji, decimals });
    }
    if (next.qr === "reciprocated" && prev.qr !== "reciprocated") void this.emit("qrScanned");
    if (next.phase === "done" && prev.phase !== "done") {
      void this.emit("done", next.verified ?? { devices: [], masterKeys: [] });
    }
    if (next.phase === "cancelled" && prev.phase !== "cancelled" && next.cancel !== undefined) {
      void this.emit("cancelled", next.cancel);
    }
  }
}
