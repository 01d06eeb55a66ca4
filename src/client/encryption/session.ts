// The client's E2EE part: for each logged-in session it opens the crypto store and the driver
// (`ClientCrypto`) with the verification service, plugs them into sync and sending, and closes
// them when the session ends. The rooms part asks it around invites and joins (`RoomsE2ee`).
import { StoreMismatchError } from "../../store/errors.ts";
import type { BasicEvent, JsonObject } from "../../wire/index.ts";
import type { RoomEvent } from "../events/types.ts";
import type { RoomsE2ee } from "../rooms/api.ts";
import type { Room } from "../rooms/room.ts";
import type { SessionInfo } from "../session/session.ts";
import type { EventEncryptor, SyncProcessor } from "../sync/hooks.ts";
import type { VerificationRequest } from "../verification/request.ts";
import { VerificationService } from "../verification/service.ts";
import type { ClientCrypto } from "./client-crypto.ts";
import type { ClientCryptoHost } from "./client-crypto-types.ts";
import { ClientCryptoError } from "./errors.ts";
import { refusingSyncProcessor } from "./not-started.ts";
import { type EncryptionOptions, type OpenedStore, openCryptoStore, openStoredIdentity } from "./options.ts";

export interface EncryptionHost {
  /** What the driver needs of the client. */
  readonly driver: ClientCryptoHost;
  /** The client's sync token, for the driver to notice a client store that starts over. */
  nextBatch(): string | undefined;
  /** Plugs the sync and send hooks in (undefined: the client's own options). */
  setSyncProcessor(p: SyncProcessor | undefined): void;
  setEventEncryptor(e: EventEncryptor | undefined): void;
  /** Sends an in-room verification event of a flow with `partner`. */
  sendVerificationEvent(roomId: string, type: string, content: JsonObject, partner: string): Promise<string>;
  directRoomWith(userId: string): Promise<string>;
  emitVerificationRequest(request: VerificationRequest): void;
  reportError(error: unknown): void;
}

export class EncryptionSession implements RoomsE2ee {
  readonly #options: EncryptionOptions | undefined;
  readonly #host: EncryptionHost;
  #driver: ClientCrypto | undefined;
  #verification: VerificationService | undefined;
  /**
   * Starts under way (a login's or restore's, see `starting`): until they end the crypto store
   * cannot say which rooms it recorded as encrypted, and a send must not take that for "not
   * encrypted" (see `recordedEncrypted`).
   */
  readonly #starts = new Set<Promise<unknown>>();
  /** Why the driver does not run: the last start's error, or "stopped" (closed or logged out). */
  #down: { readonly error: unknown } | "stopped" | undefined;
  /** The store `restoreDeviceId` opened to read the device ID, handed to the login that follows. */
  #preopened: OpenedStore | undefined;

  constructor(options: EncryptionOptions | undefined, host: EncryptionHost) {
    this.#options = options;
    this.#host = host;
  }

  /** Whether the client was created with `encryption`. */
  get configured(): boolean {
    return this.#options !== undefined;
  }

  /** The driver while it runs. */
  get running(): ClientCrypto | undefined {
    return this.#driver;
  }

  /** The driver; throws `ClientCryptoError("NOT_ENABLED")` without `encryption` or a session. */
  get driver(): ClientCrypto {
    if (this.#driver === undefined) {
      throw new ClientCryptoError(
        "NOT_ENABLED",
        this.#options ? "log in or restore a session first" : "the client was created without encryption",
      );
    }
    return this.#driver;
  }

  /** The verification service; throws like `driver`. */
  get verification(): VerificationService {
    this.driver; // throws NOT_ENABLED without encryption
    return this.#verification as VerificationService;
  }

  /**
   * With `restoreDeviceId`, the device the crypto store of `user` remembers (its store kept open
   * for the login that follows).
   */
  async rememberedDevice(user: string): Promise<string | undefined> {
    const enc = this.#options;
    if (!enc?.restoreDeviceId) return undefined;
    const opened = await openStoredIdentity(enc, user);
    if (!opened) return undefined;
    this.#preopened = opened;
    return (await opened.store.loadIdentity()).deviceId;
  }

  /**
   * Opens the crypto store for a new login's session before the session is saved (kept open for
   * `start`): a store of another user or device refuses the login here (`StoreMismatchError`).
   */
  async prepare(info: { userId: string; deviceId: string }): Promise<void> {
    const enc = this.#options;
    if (enc === undefined) return;
    const current = this.#driver;
    if (current?.userId === info.userId && current.deviceId === info.deviceId) return;
    this.#preopened = await this.#storeFor(enc, info);
  }

  /**
   * Before a login or restore as `info`: a driver running for another user or device is stopped
   * (its store closed) and syncs are refused until the new one runs. A start that then fails (the
   * new store locked, a wrong passphrase) leaves no encryption running, never the previous
   * account's, so sends are refused (`NOT_STARTED`). A store opened ahead for the login
   * (`rememberedDevice`) is kept.
   */
  async leaveOtherAccount(info: { userId: string; deviceId: string }): Promise<void> {
    if (this.#options === undefined) return;
    const current = this.#driver;
    if (current === undefined || (current.userId === info.userId && current.deviceId === info.deviceId)) {
      return;
    }
    await this.stop(false);
    this.#host.setSyncProcessor(refusingSyncProcessor());
  }

  /** The store opened ahead for this user and device (another is closed), else one opened now. */
  async #storeFor(enc: EncryptionOptions, info: { userId: string; deviceId: string }): Promise<OpenedStore> {
    const pre = this.#preopened;
    this.#preopened = undefined;
    if (pre !== undefined) {
      const id = await pre.store.loadIdentity();
      if (id.userId === info.userId && id.deviceId === info.deviceId) return pre;
      if (pre.owned) await pre.store.close();
    }
    // A store of another user or device fails here with StoreMismatchError.
    return openCryptoStore(enc, info.userId, info.deviceId);
  }

  /** Whether a login failed because the crypto store refused its account or device. */
  static refusedLogin(error: unknown): boolean {
    return (
      error instanceof StoreMismatchError ||
      (error instanceof ClientCryptoError && error.code === "STORE_FACTORY_FAILED")
    );
  }

  /**
   * Runs `work`, a login's or restore's start of a session (from adopting the session until the
   * driver runs): a send meanwhile waits for it, and one after it failed is refused.
   */
  async starting<T>(work: () => Promise<T>): Promise<T> {
    const run = work();
    this.#starts.add(run);
    try {
      const value = await run;
      this.#down = undefined;
      return value;
    } catch (e) {
      this.#down = { error: e };
      throw e;
    } finally {
      this.#starts.delete(run);
    }
  }

  /** Opens the driver for a session (unless it runs for this user and device already). */
  start(info: SessionInfo): Promise<void> {
    return this.starting(() => this.#start(info));
  }

  async #start(info: SessionInfo): Promise<void> {
    const enc = this.#options;
    if (enc === undefined) return;
    const current = this.#driver;
    if (current?.userId === info.userId && current.deviceId === info.deviceId) return;
    await this.stop(false);
    // Until the engine runs, syncs are refused: handled without it, their room keys would be lost.
    this.#host.setSyncProcessor(refusingSyncProcessor());
    const opened = await this.#storeFor(enc, info);
    let driver: ClientCrypto;
    try {
      // The engine (Olm, Megolm, the machine, the driver) is loaded when a session first opens it:
      // a dynamic import, which bundlers split into its own chunk, so a page shows its login form
      // (and a client without encryption runs) without it.
      const { ClientCrypto } = await import("./client-crypto.ts");
      driver = await ClientCrypto.open({
        host: {
          ...this.#host.driver,
          // A refused sender's verification event decrypted late: for the flow, as on time.
          verificationEvent: (event) => this.#verification?.onRoomEvent(event),
        },
        store: opened,
        userId: info.userId,
        deviceId: info.deviceId,
        verifyDevices: enc.verifyDevices ?? false,
        onlyVerifiedDevices: enc.onlyVerifiedDevices ?? false,
        ...(enc.shareWith !== undefined ? { shareWith: enc.shareWith } : {}),
        ...(enc.senderRequirement !== undefined ? { senderRequirement: enc.senderRequirement } : {}),
        errorOnVerifiedUserProblems: enc.errorOnVerifiedUserProblems ?? false,
        clientSince: this.#host.nextBatch(),
        ...(enc.lease !== undefined ? { lease: enc.lease } : {}),
      });
    } catch (e) {
      if (opened.owned) await opened.store.close();
      throw e;
    }
    this.#driver = driver;
    this.#host.setSyncProcessor(driver);
    this.#host.setEventEncryptor(driver);
    const host = this.#host;
    this.#verification = new VerificationService({
      userId: info.userId,
      machine: driver.machine,
      flush: () => driver.flush(),
      refreshDevices: async (userId) => void (await driver.getUserDevices(userId)),
      sendEvent: (roomId, type, content, partner) =>
        host.sendVerificationEvent(roomId, type, content, partner),
      directRoomWith: (userId) => host.directRoomWith(userId),
      emitRequest: (request) => host.emitVerificationRequest(request),
      exclusive: (work) => driver.exclusive(work),
      reportError: (error) => host.reportError(error),
      refusedVerificationEvent: (roomId, eventId) => driver.takeRefusedVerificationEvent(roomId, eventId),
    });
  }

  /**
   * Before a logout revokes the access token: the dehydration schedule pauses, and its work under
   * way (an upload) ends, or a rotation meanwhile would fail on the dead token (and be reported).
   * `resumeDehydration` sets it going again when the revocation failed; `stop` wipes it.
   */
  async pauseDehydration(): Promise<void> {
    await this.#driver?.dehydration.pauseAndWait();
  }

  /** The logout failed and the session goes on: the schedule `pauseDehydration` paused resumes. */
  resumeDehydration(): void {
    this.#driver?.dehydration.resume();
  }

  /** Closes the driver; `releasePreopened`: also a store opened for a login (not during one). */
  async stop(releasePreopened = true): Promise<void> {
    const driver = this.#driver;
    this.#driver = undefined;
    this.#down = "stopped";
    this.#verification?.close();
    this.#verification = undefined;
    this.#host.setSyncProcessor(undefined);
    this.#host.setEventEncryptor(undefined);
    await driver?.close();
    if (releasePreopened) await this.releasePreopened();
  }

  /** Closes the store `rememberedDevice` opened, if no session took it. */
  async releasePreopened(): Promise<void> {
    const opened = this.#preopened;
    this.#preopened = undefined;
    if (opened?.owned) await opened.store.close();
  }

  // ---- what the other parts ask ----

  onRoomEvent(event: RoomEvent): void {
    this.#verification?.onRoomEvent(event);
  }

  /** Global account data from sync (the driver follows a moved default secret storage key). */
  onAccountData(event: BasicEvent): void {
    this.#driver?.accountDataChanged(event);
  }

  onVerificationToDevice(): void {
    this.#verification?.onSync();
  }

  /**
   * Whether the crypto store recorded the room as encrypted. Without `encryption` configured: no
   * (there is no crypto store; the room's state alone decides). With it, the store's answer or a
   * refusal, never a "no" for want of the store: a room it recorded as encrypted stays so even when
   * the server's state (or a new client store) no longer says it. A start under way (a login's or
   * restore's) is waited for; with none running (it failed, or the client was closed or logged
   * out) this throws `ClientCryptoError` `NOT_STARTED` (the start's error as its cause) or `CLOSED`.
   */
  async recordedEncrypted(roomId: string): Promise<boolean> {
    if (this.#options === undefined) return false;
    while (this.#starts.size > 0) await Promise.allSettled(this.#starts);
    const driver = this.#driver;
    if (driver !== undefined) return driver.isRoomRecordedEncrypted(roomId);
    const down = this.#down;
    if (down === "stopped") {
      throw new ClientCryptoError(
        "CLOSED",
        "encryption was stopped (client closed or logged out): not sending",
      );
    }
    throw new ClientCryptoError(
      "NOT_STARTED",
      "encryption is configured but not running (no session started, or its start failed: see the cause); not sending, as whether the room is encrypted is unknown",
      down !== undefined ? { cause: down.error } : undefined,
    );
  }

  async beforeInvite(room: () => Promise<Room>, userId: string): Promise<void> {
    const driver = this.#driver;
    if (driver === undefined) return;
    try {
      // A room not known from sync (yet): its state from the server says whether to share.
      await driver.shareRoomHistory(await room(), userId);
    } catch (e) {
      this.#host.reportError(e);
    }
  }

  async afterJoin(roomId: string, inviter: string): Promise<void> {
    const driver = this.#driver;
    if (driver === undefined) return;
    try {
      await driver.inviteAccepted(roomId, inviter);
    } catch (e) {
      this.#host.reportError(e);
    }
  }
}
