// The Matrix client: rooms, sending and media on top of the session and sync core (base.ts).

import type {
  CrossSigningStatus,
  DeviceInfo,
  DeviceTrust,
  HeldKeyRequest,
  UserIdentityInfo,
} from "../e2ee/index.ts";
import { StoreMismatchError } from "../store/errors.ts";
import { emptyResponseSchema, eventIdResponseSchema, type JsonObject } from "../wire/index.ts";
import type { MatrixClientOptions, PasswordLogin, SessionInfo } from "./base.ts";
import {
  ClientCrypto,
  ClientCryptoError,
  type ClientCryptoHost,
  downloadAttachmentBytes,
  downloadAttachmentStream,
  type EncryptionOptions,
  encryptedFile,
  encryptUpload,
  type KeyImportResult,
  type OpenedStore,
  openCryptoStore,
  openStoredIdentity,
  type ProgressCallback,
  type RoomTrustRequirements,
  refusingSyncProcessor,
  resolveEncryptionOptions,
} from "./crypto/index.ts";
import { DeviceApi } from "./devices.ts";
import { discoverHomeserver } from "./discovery.ts";
import { ClientError } from "./errors.ts";
import { path } from "./http.ts";
import type { DownloadedMedia, UploadData, UploadOptions } from "./media.ts";
import {
  editContent,
  htmlContent,
  type MessageType,
  type RelationOptions,
  reactionContent,
  textContent,
  withRelations,
} from "./rooms/content.ts";
import { Room } from "./rooms/room.ts";
import { newTxnId } from "./rooms/send-queue.ts";
import { RoomsClient, statePath } from "./rooms-client.ts";
import type { ClientStore, StoredSession } from "./store/index.ts";
import type { UiaAuth } from "./uia.ts";
import type { VerificationRequest } from "./verification/request.ts";
import { VerificationService } from "./verification/service.ts";

export interface SendOptions extends RelationOptions {
  /** Fixed transaction ID (to make a send idempotent across restarts). */
  txnId?: string;
}

export class MatrixClient extends RoomsClient {
  readonly #encryption: EncryptionOptions | undefined;
  #crypto: ClientCrypto | undefined;
  #devices: DeviceApi | undefined;
  /** The store `restoreDeviceId` opened to read the device ID, handed to the login that follows. */
  #preopened: OpenedStore | undefined;
  #verification: VerificationService | undefined;

  constructor(opts: MatrixClientOptions) {
    super(opts);
    this.#encryption = resolveEncryptionOptions(opts.encryption);
    // Verification rides on the events the client emits anyway (decrypted by then).
    this.on("room.event", (_room, event) => this.#verification?.onRoomEvent(event));
    this.on("toDevice", (event) => {
      if (event.type.startsWith("m.key.verification.")) this.#verification?.onSync();
    });
  }

  /** Creates a client for a user ID, server name or URL, discovering the homeserver through `.well-known`. */
  static async discover(
    userIdOrServer: string,
    opts: Omit<MatrixClientOptions, "homeserverUrl"> & { wellKnownScheme?: "https" | "http" } = {},
  ): Promise<MatrixClient> {
    const { baseUrl } = await discoverHomeserver(userIdOrServer, {
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.wellKnownScheme ? { scheme: opts.wellKnownScheme } : {}),
    });
    return new MatrixClient({ ...opts, homeserverUrl: baseUrl });
  }

  /** Creates a client from the session saved in `store` and restores it (no login, same device). */
  static async fromStore(
    store: ClientStore,
    opts: Omit<MatrixClientOptions, "homeserverUrl" | "store"> = {},
  ) {
    const session = await store.loadSession();
    if (!session) throw new ClientError("NOT_LOGGED_IN", "the store holds no session");
    const client = new MatrixClient({ ...opts, store, homeserverUrl: session.homeserverUrl });
    await client.restore(session);
    return client;
  }

  // ---- encryption: session ----

  /** With `encryption.restoreDeviceId`, logs in with the device the crypto store remembers. */
  override async login(opts: PasswordLogin): Promise<SessionInfo> {
    const enc = this.#encryption;
    let login = opts;
    if (enc?.restoreDeviceId && opts.deviceId === undefined) {
      const opened = await openStoredIdentity(enc, opts.user);
      if (opened) {
        this.#preopened = opened;
        login = { ...opts, deviceId: (await opened.store.loadIdentity()).deviceId };
      }
    }
    const before = await this.store.loadSession();
    try {
      return await super.login(login);
    } catch (e) {
      if (login.deviceId === undefined) await this.#dropNewDevice(e, before);
      throw e;
    } finally {
      await this.#releasePreopened();
    }
  }

  /** With `encryption`, a crypto store of another user or device refuses the account: see {@link login}. */
  override async register(opts: Parameters<RoomsClient["register"]>[0]): Promise<SessionInfo> {
    const before = await this.store.loadSession();
    try {
      return await super.register(opts);
    } catch (e) {
      if (opts.deviceId === undefined) await this.#dropNewDevice(e, before);
      throw e;
    }
  }

  /**
   * The server created a device for this login, then the crypto store refused it: log that device
   * out again, so a refused login leaves no stray device (with no keys) on the account.
   */
  async #dropNewDevice(error: unknown, before: StoredSession | undefined): Promise<void> {
    const created = this.sessionInfo;
    const refused =
      error instanceof StoreMismatchError ||
      (error instanceof ClientCryptoError && error.code === "STORE_FACTORY_FAILED");
    if (!refused || created === undefined) return;
    if (before?.userId === created.userId && before.deviceId === created.deviceId) return;
    try {
      await super.logout();
    } catch (e) {
      this.logger.warn(
        { deviceId: created.deviceId, err: String(e) },
        "could not log out the refused device",
      );
    }
  }

  /** Resumes a session; with `encryption`, opens the crypto store and uploads keys if needed. */
  override async restore(session?: StoredSession): Promise<SessionInfo> {
    const info = await super.restore(session);
    if (this.#encryption) await this.#startCrypto(this.#encryption, info);
    return info;
  }

  override async logout(): Promise<void> {
    await super.logout();
    await this.#stopCrypto();
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#stopCrypto();
  }

  /**
   * Invites `userId`. With encryption, in an encrypted room whose history is `shared` or
   * `world_readable`, first sends them the room's shareable keys (MSC4268 history sharing) so
   * they can read what was said before; a failure there is reported (`error`), not thrown.
   */
  override async invite(roomId: string, userId: string, reason?: string): Promise<void> {
    const crypto = this.#crypto;
    if (crypto !== undefined) {
      try {
        // A room not known from sync (yet): its state from the server says whether to share.
        const room = this.rooms.get(roomId) ?? (await this.#roomFromServer(roomId));
        await crypto.shareRoomHistory(room, userId);
      } catch (e) {
        this.emit("error", e);
      }
    }
    await super.invite(roomId, userId, reason);
  }

  /** A room built from its current state on the server, not kept (sync brings it in). */
  async #roomFromServer(roomId: string): Promise<Room> {
    const room = new Room(roomId);
    for (const ev of await this.fetchRoomState(roomId)) room.applyState(ev);
    return room;
  }

  /**
   * Joins a room. With encryption, accepting an invite lets the inviter's history-sharing bundle
   * in (MSC4268): it is imported if it came, or when it comes within a day.
   */
  override async joinRoom(
    roomIdOrAlias: string,
    opts: { via?: string[]; reason?: string } = {},
  ): Promise<string> {
    const invited = this.rooms.get(roomIdOrAlias);
    // The sender of our membership event in the invite's stripped state invited us.
    const inviter =
      invited?.membership === "invite"
        ? invited.inviteState.find((e) => e.type === "m.room.member" && e.state_key === this.userId)?.sender
        : undefined;
    const roomId = await super.joinRoom(roomIdOrAlias, opts);
    if (this.#crypto !== undefined && inviter !== undefined && inviter !== this.userId) {
      try {
        await this.#crypto.inviteAccepted(roomId, inviter);
      } catch (e) {
        this.emit("error", e);
      }
    }
    return roomId;
  }

  async #startCrypto(enc: EncryptionOptions, info: SessionInfo): Promise<void> {
    const current = this.#crypto;
    if (current?.userId === info.userId && current.deviceId === info.deviceId) return;
    await this.#stopCrypto(false);
    // Until the engine runs, syncs are refused: handled without it, their room keys would be lost.
    this.setSyncProcessor(refusingSyncProcessor());
    let opened = this.#preopened;
    this.#preopened = undefined;
    if (opened !== undefined) {
      const id = await opened.store.loadIdentity();
      if (id.userId !== info.userId || id.deviceId !== info.deviceId) {
        if (opened.owned) await opened.store.close();
        opened = undefined;
      }
    }
    // A store of another user or device fails here with StoreMismatchError.
    opened ??= await openCryptoStore(enc, info.userId, info.deviceId);
    try {
      this.#crypto = await ClientCrypto.open({
        host: this.#cryptoHost(),
        store: opened,
        userId: info.userId,
        deviceId: info.deviceId,
        verifyDevices: enc.verifyDevices ?? false,
        onlyVerifiedDevices: enc.onlyVerifiedDevices ?? false,
        ...(enc.shareWith !== undefined ? { shareWith: enc.shareWith } : {}),
        ...(enc.senderRequirement !== undefined ? { senderRequirement: enc.senderRequirement } : {}),
        clientSince: this.nextBatch,
        ...(enc.lease !== undefined ? { lease: enc.lease } : {}),
      });
    } catch (e) {
      if (opened.owned) await opened.store.close();
      throw e;
    }
    this.setSyncProcessor(this.#crypto);
    this.setEventEncryptor(this.#crypto);
    const crypto = this.#crypto;
    this.#verification = new VerificationService({
      userId: info.userId,
      machine: crypto.machine,
      flush: () => crypto.flush(),
      refreshDevices: async (userId) => void (await crypto.getUserDevices(userId)),
      sendEvent: (roomId, type, content) => this.sendEvent(roomId, type, content),
      directRoomWith: (userId) => this.createDirectRoom(userId, { encrypted: true }),
      emitRequest: (request) => void this.emit("verification.request", request),
      exclusive: (work) => crypto.exclusive(work),
      reportError: (error) => void this.emit("error", error),
    });
  }

  async #stopCrypto(releasePreopened = true): Promise<void> {
    const crypto = this.#crypto;
    this.#crypto = undefined;
    this.#verification?.close();
    this.#verification = undefined;
    this.setSyncProcessor(this.opts.syncProcessor);
    this.setEventEncryptor(this.opts.eventEncryptor);
    await crypto?.close();
    if (releasePreopened) await this.#releasePreopened();
  }

  async #releasePreopened(): Promise<void> {
    const opened = this.#preopened;
    this.#preopened = undefined;
    if (opened?.owned) await opened.store.close();
  }

  #cryptoHost(): ClientCryptoHost {
    return {
      http: this.http,
      logger: this.logger,
      getRoom: (roomId) => this.rooms.get(roomId),
      rooms: () => this.rooms.values(),
      emitDecrypted: (room, event) => this.emit("room.decrypted", room, event),
      emitKeyRequest: (request) => void this.emit("crypto.keyRequest", request),
      reportError: (error) => void this.emit("error", error),
      getAccountData: (type) => this.getAccountData(type),
      setAccountData: (type, content) => this.setAccountData(type, content),
      clock: this.clock,
      uploadMedia: (data) => this.media.upload(data),
      downloadMedia: async (mxcUri, maxBytes) => (await this.media.download(mxcUri, { maxBytes })).data,
    };
  }

  // ---- encryption: devices, trust, keys ----

  /** The encryption driver; throws `ClientCryptoError("NOT_ENABLED")` without `encryption` or a session. */
  /** The account's own devices: list, rename, delete (with the password or another auth stage). */
  get devices(): DeviceApi {
    this.#devices ??= new DeviceApi({
      http: this.http,
      session: () => this.requireSession(),
      e2eeDevices: async (ids) => (this.#crypto === undefined ? [] : this.#crypto.getOwnDevices(ids)),
    });
    return this.#devices;
  }

  get crypto(): ClientCrypto {
    if (this.#crypto === undefined) {
      throw new ClientCryptoError(
        "NOT_ENABLED",
        this.#encryption ? "log in or restore a session first" : "the client was created without encryption",
      );
    }
    return this.#crypto;
  }

  get isEncryptionEnabled(): boolean {
    return this.#crypto !== undefined;
  }

  /**
   * Interactive verification (SAS emoji/decimals, QR): with one of our own devices over to-device
   * (`deviceId`, or all our other devices), with another user in a DM (created if needed).
   * Incoming requests arrive as `verification.request` events. See docs/verification.md.
   */
  requestVerification(userId: string, deviceId?: string): Promise<VerificationRequest> {
    return this.#verifier().request(userId, deviceId);
  }

  /** SAS with one device without a request first (the older to-device flow, e.g. matrix-nio). */
  startSasVerification(userId: string, deviceId: string): Promise<VerificationRequest> {
    return this.#verifier().startSasWithoutRequest(userId, deviceId);
  }

  /** Verification flows this device knows of (open, and finished in the last minutes). */
  getVerificationRequests(): VerificationRequest[] {
    return this.#verifier().list();
  }

  #verifier(): VerificationService {
    this.crypto; // throws NOT_ENABLED without encryption
    return this.#verification as VerificationService;
  }

  /** This device's Ed25519 fingerprint, to compare out of band when others verify it. */
  getFingerprint(): string {
    return this.crypto.getFingerprint();
  }

  /** A user's devices with their keys and the trust we gave them. */
  getUserDevices(userId: string): Promise<DeviceInfo[]> {
    return this.crypto.getUserDevices(userId);
  }

  setDeviceTrust(userId: string, deviceId: string, trust: DeviceTrust): Promise<DeviceInfo> {
    return this.crypto.setDeviceTrust(userId, deviceId, trust);
  }
  /**
   * Room-key requests of our own devices that are not verified yet, held until `verifyDevice`
   * (answered then) or `blacklistDevice` (dropped). Each also raises `crypto.keyRequest`.
   */
  getHeldKeyRequests(): HeldKeyRequest[] {
    return this.crypto.getHeldKeyRequests();
  }
  /** Marks a device verified (after comparing its fingerprint out of band). */
  verifyDevice(userId: string, deviceId: string): Promise<DeviceInfo> {
    return this.setDeviceTrust(userId, deviceId, "verified");
  }
  /** Never shares room keys with this device again (it gets `m.room_key.withheld`). */
  blacklistDevice(userId: string, deviceId: string): Promise<DeviceInfo> {
    return this.setDeviceTrust(userId, deviceId, "blacklisted");
  }
  /** Shares keys with this device without verifying it (it no longer blocks `verifyDevices`). */
  ignoreDevice(userId: string, deviceId: string): Promise<DeviceInfo> {
    return this.setDeviceTrust(userId, deviceId, "ignored");
  }
  unsetDeviceTrust(userId: string, deviceId: string): Promise<DeviceInfo> {
    return this.setDeviceTrust(userId, deviceId, "unset");
  }

  /** Per-room `verifyDevices` (overrides the client-wide option): sends throw `UnknownDevicesError`. */
  async setRoomVerifyDevices(roomId: string, verifyDevices: boolean): Promise<void> {
    const room = this.rooms.get(roomId);
    if (!room?.encrypted) throw new ClientError("INVALID_ARGUMENT", "not a known encrypted room");
    await this.crypto.setRoomVerifyDevices(room, verifyDevices);
  }

  // ---- cross-signing (docs/verification.md) ----

  /**
   * Creates and uploads our cross-signing keys and signs this device. Servers ask for
   * User-Interactive Auth: pass `auth` (`{ password }` or a callback). Does nothing when our
   * published identity is already ours, unless `reset`.
   */
  bootstrapCrossSigning(opts: { auth?: UiaAuth; reset?: boolean } = {}): Promise<CrossSigningStatus> {
    return this.crypto.bootstrapCrossSigning(opts);
  }
  /** Our cross-signing state: published master key, private keys held, whether it is trusted. */
  getCrossSigningStatus(): Promise<CrossSigningStatus> {
    return this.crypto.crossSigningStatus();
  }
  /** A user's cross-signing identity (verified, changed, violation), or undefined if they have none. */
  getUserIdentity(userId: string): Promise<UserIdentityInfo | undefined> {
    return this.crypto.getUserIdentity(userId);
  }
  /** Verifies a user's current identity (signing their master key when we can). */
  verifyUser(userId: string): Promise<UserIdentityInfo> {
    return this.crypto.verifyUser(userId);
  }
  /** Accepts a user's changed identity (clears `changed` and a violation). */
  acceptIdentityChange(userId: string): Promise<UserIdentityInfo> {
    return this.crypto.acceptIdentityChange(userId);
  }
  /** Withdraws a user's verification (clears a verification violation). */
  withdrawVerification(userId: string): Promise<UserIdentityInfo> {
    return this.crypto.withdrawVerification(userId);
  }
  /**
   * Per-room trust requirements (override `encryption.shareWith` / `senderRequirement`), kept in
   * the crypto store across restarts.
   */
  async setRoomTrustRequirements(roomId: string, requirements: RoomTrustRequirements): Promise<void> {
    const room = this.rooms.get(roomId);
    if (!room?.encrypted) throw new ClientError("INVALID_ARGUMENT", "not a known encrypted room");
    await this.crypto.setRoomTrustRequirements(room, requirements);
  }

  /**
   * Exports every room key we hold (or only those of `roomIds`, including rooms we left) as a
   * standard passphrase-protected file (Element, matrix-js-sdk). `onProgress` counts sessions,
   * or rooms when `roomIds` is given.
   */
  exportRoomKeys(
    passphrase: string,
    opts: { roomIds?: readonly string[]; onProgress?: ProgressCallback; rounds?: number } = {},
  ): Promise<string> {
    return this.crypto.exportRoomKeys(opts.roomIds, passphrase, {
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}),
    });
  }

  /** Imports a key export file; events waiting for these keys are emitted as `room.decrypted`. */
  importRoomKeys(
    file: string,
    passphrase: string,
    opts: { onProgress?: ProgressCallback } = {},
  ): Promise<KeyImportResult> {
    return this.crypto.importRoomKeys(file, passphrase, opts);
  }

  /**
   * The bytes of a media event's attachment: `content.file` is downloaded and decrypted (its hash
   * checked first), `content.url` downloaded as is.
   */
  downloadAttachment(content: JsonObject, opts: { signal?: AbortSignal; maxBytes?: number } = {}) {
    return downloadAttachmentBytes(content, async (mxc) => (await this.downloadMedia(mxc, opts)).data);
  }

  /**
   * `downloadAttachment` as a stream, for big files. An encrypted file's hash is checked at the
   * end: the stream then errors (`HASH_MISMATCH`), so act on the bytes only once it ended cleanly.
   */
  downloadAttachmentStream(content: JsonObject, opts: { signal?: AbortSignal } = {}) {
    return downloadAttachmentStream(
      content,
      async (mxc) => (await this.downloadMediaStream(mxc, opts)).stream,
    );
  }

  /**
   * Whether the room is encrypted: recorded as such by the crypto store (then nothing the server
   * sends later turns it off), or with `m.room.encryption` in its state (from sync, else the server).
   */
  async isRoomEncrypted(roomId: string): Promise<boolean> {
    if (this.#crypto !== undefined && (await this.#crypto.machine.getRoomSettings(roomId)) !== undefined) {
      return true;
    }
    return (
      this.rooms.get(roomId)?.encrypted ??
      (await this.fetchStateEvent(roomId, "m.room.encryption")) !== undefined
    );
  }

  protected override async prepareOutgoing(
    roomId: string,
    type: string,
    content: JsonObject,
  ): Promise<{ type: string; content: JsonObject }> {
    let room = this.rooms.get(roomId);
    // A room whose state says encrypted needs no look-up in the crypto store.
    if (room?.encrypted !== true && !(await this.isRoomEncrypted(roomId))) return { type, content };
    // Never fall back to plaintext in an encrypted room.
    if (!this.eventEncryptor) {
      throw new ClientError("ENCRYPTION_UNAVAILABLE", "the room is encrypted and no event encryptor is set");
    }
    if (!room) {
      // Not synced yet (e.g. a one-shot send): the encryptor needs the members, so read the state.
      room = new Room(roomId);
      for (const ev of await this.fetchRoomState(roomId)) room.applyState(ev);
    }
    return this.eventEncryptor.encryptRoomEvent(room, type, content);
  }

  /** Sends any room event; queued per room, retried on transient failure. Returns the event ID. */
  sendEvent(
    roomId: string,
    type: string,
    content: JsonObject,
    opts: { txnId?: string } = {},
  ): Promise<string> {
    this.requireSession();
    return this.sendQueue.enqueue(roomId, { kind: "message", type, content }, opts.txnId ?? newTxnId());
  }

  /** Sends an `m.room.message` with reply/thread/mention options applied. */
  sendMessage(roomId: string, content: JsonObject, opts: SendOptions = {}): Promise<string> {
    return this.sendEvent(
      roomId,
      "m.room.message",
      withRelations(content, opts),
      opts.txnId ? { txnId: opts.txnId } : {},
    );
  }

  sendText(roomId: string, body: string, opts: SendOptions = {}): Promise<string> {
    return this.sendMessage(roomId, textContent(body, "m.text"), opts);
  }
  sendNotice(roomId: string, body: string, opts: SendOptions = {}): Promise<string> {
    return this.sendMessage(roomId, textContent(body, "m.notice"), opts);
  }
  sendEmote(roomId: string, body: string, opts: SendOptions = {}): Promise<string> {
    return this.sendMessage(roomId, textContent(body, "m.emote"), opts);
  }
  /** HTML message; `body` is the plain fallback (derived from the HTML when omitted). */
  sendHtml(
    roomId: string,
    html: string,
    opts: SendOptions & { body?: string; msgtype?: MessageType } = {},
  ): Promise<string> {
    return this.sendMessage(roomId, htmlContent(html, opts.body, opts.msgtype), opts);
  }

  /** Replaces the content of `eventId` (an edit). A string is sent as new `m.text` body. */
  editMessage(
    roomId: string,
    eventId: string,
    newContent: string | JsonObject,
    opts: { txnId?: string } = {},
  ) {
    const c = typeof newContent === "string" ? textContent(newContent) : newContent;
    return this.sendEvent(roomId, "m.room.message", editContent(eventId, c), opts);
  }

  react(roomId: string, eventId: string, key: string, opts: { txnId?: string } = {}): Promise<string> {
    return this.sendEvent(roomId, "m.reaction", reactionContent(eventId, key), opts);
  }

  /** Redacts `eventId`; queued with the room's other sends. Returns the redaction's event ID. */
  redact(roomId: string, eventId: string, opts: { reason?: string; txnId?: string } = {}): Promise<string> {
    this.requireSession();
    const ev =
      opts.reason !== undefined
        ? { kind: "redaction" as const, eventId, reason: opts.reason }
        : { kind: "redaction" as const, eventId };
    return this.sendQueue.enqueue(roomId, ev, opts.txnId ?? newTxnId());
  }

  /** Sets a state event (never encrypted). Returns the event ID. */
  async sendStateEvent(roomId: string, type: string, stateKey: string, content: JsonObject): Promise<string> {
    const res = await this.call({
      method: "PUT",
      path: statePath(roomId, type, stateKey),
      body: content,
      schema: eventIdResponseSchema,
    });
    return res.event_id;
  }

  async sendTyping(roomId: string, typing: boolean, timeoutMs = 30_000): Promise<void> {
    const userId = this.userId;
    await this.call({
      method: "PUT",
      path: path`/_matrix/client/v3/rooms/${roomId}/typing/${userId}`,
      body: typing ? { typing: true, timeout: timeoutMs } : { typing: false },
      schema: emptyResponseSchema,
    });
  }

  /** Sends a read receipt (`m.read`, or `m.read.private`), optionally for one thread. */
  async sendReadReceipt(
    roomId: string,
    eventId: string,
    opts: { private?: boolean; threadId?: string } = {},
  ): Promise<void> {
    const type = opts.private ? "m.read.private" : "m.read";
    await this.call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/receipt/${type}/${eventId}`,
      body: opts.threadId !== undefined ? { thread_id: opts.threadId } : {},
      schema: emptyResponseSchema,
    });
  }

  // ---- media ----

  uploadMedia(data: UploadData, opts: UploadOptions = {}): Promise<string> {
    this.requireSession();
    return this.media.upload(data, opts);
  }

  downloadMedia(
    mxcUri: string,
    opts: { signal?: AbortSignal; maxBytes?: number } = {},
  ): Promise<DownloadedMedia & { data: Uint8Array }> {
    return this.media.download(mxcUri, opts);
  }

  downloadMediaStream(mxcUri: string, opts: { signal?: AbortSignal } = {}) {
    return this.media.downloadStream(mxcUri, opts);
  }

  /**
   * Uploads a file and posts it as `m.file` / `m.image` / `m.audio` / `m.video` (by content type
   * unless given). In an encrypted room the file is encrypted first (v2: the server stores only
   * ciphertext, the key travels in the encrypted event's `file`).
   */
  async sendFile(
    roomId: string,
    data: UploadData,
    opts: { filename: string; contentType?: string; size?: number; msgtype?: string } & SendOptions,
  ): Promise<string> {
    const contentType = opts.contentType ?? "application/octet-stream";
    const size =
      opts.size ??
      (data instanceof Uint8Array ? data.byteLength : data instanceof Blob ? data.size : undefined);
    const major = contentType.split("/")[0];
    const msgtype =
      opts.msgtype ??
      (major === "image"
        ? "m.image"
        : major === "audio"
          ? "m.audio"
          : major === "video"
            ? "m.video"
            : "m.file");
    const info: JsonObject = { mimetype: contentType };
    if (size !== undefined) info.size = size;
    const content: JsonObject = { msgtype, body: opts.filename, filename: opts.filename, info };
    if (await this.isRoomEncrypted(roomId)) {
      // Checked before uploading: a plaintext upload must never precede a refused encrypted send.
      if (this.#crypto === undefined) {
        throw new ClientError(
          "ENCRYPTION_UNAVAILABLE",
          "the room is encrypted and encryption is not enabled",
        );
      }
      const upload = await encryptUpload(data, size);
      const url = await this.uploadMedia(upload.data, {
        contentType: "application/octet-stream",
        ...(upload.size !== undefined ? { size: upload.size } : {}),
      });
      content.file = { ...encryptedFile(await upload.info, url) };
    } else {
      content.url = await this.uploadMedia(data, {
        filename: opts.filename,
        contentType,
        ...(opts.size !== undefined ? { size: opts.size } : {}),
      });
    }
    return this.sendMessage(roomId, content, opts);
  }
}
