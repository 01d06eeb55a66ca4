// The Matrix client: rooms, sending and media on top of the session and sync core (base.ts).

import type { DeviceInfo, DeviceTrust } from "../e2ee/index.ts";
import {
  type CreateRoomRequest,
  emptyResponseSchema,
  eventIdResponseSchema,
  type JsonObject,
  joinedRoomsResponseSchema,
  jsonObjectSchema,
  messagesResponseSchema,
  profileResponseSchema,
  roomAliasResponseSchema,
  roomIdResponseSchema,
  roomStateResponseSchema,
  type StateEvent,
  upgradeRoomResponseSchema,
} from "../wire/index.ts";
import { ClientBase, type MatrixClientOptions, type PasswordLogin, type SessionInfo } from "./base.ts";
import {
  ClientCrypto,
  ClientCryptoError,
  type ClientCryptoHost,
  downloadAttachmentBytes,
  type EncryptionOptions,
  encryptedFile,
  encryptUpload,
  type KeyImportResult,
  type OpenedStore,
  openCryptoStore,
  openStoredIdentity,
  type ProgressCallback,
  resolveEncryptionOptions,
} from "./crypto/index.ts";
import { discoverHomeserver } from "./discovery.ts";
import { ClientError, MatrixError } from "./errors.ts";
import type { RoomEvent } from "./events/types.ts";
import { path, type RequestPath } from "./http.ts";
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
import type { ClientStore, StoredSession } from "./store/index.ts";
import { toRoomEvent } from "./sync/handler.ts";

/** Most rooms an upgrade chain is followed through (a loop of tombstones must end). */
export const MAX_TOMBSTONE_HOPS = 16;

export interface MessagesPage {
  events: RoomEvent[];
  state: StateEvent[];
  /** Token to continue in the same direction; absent at the end of history. */
  end?: string;
  start: string;
}

export interface SendOptions extends RelationOptions {
  /** Fixed transaction ID (to make a send idempotent across restarts). */
  txnId?: string;
}

export interface CreateRoomOptions {
  name?: string;
  topic?: string;
  /** Users to invite. */
  invite?: string[];
  /** Public rooms are listed and joinable by anyone; the default is private. */
  visibility?: "public" | "private";
  /** Turn on Megolm encryption; default: on for private rooms, off for public ones. */
  encrypted?: boolean;
  /** Mark as a direct chat (`is_direct`) and record it in `m.direct`. */
  isDirect?: boolean;
  alias?: string;
  roomVersion?: string;
  preset?: CreateRoomRequest["preset"];
  initialState?: NonNullable<CreateRoomRequest["initial_state"]>;
  creationContent?: JsonObject;
}

export class MatrixClient extends ClientBase {
  readonly #encryption: EncryptionOptions | undefined;
  #crypto: ClientCrypto | undefined;
  /** The store `restoreDeviceId` opened to read the device ID, handed to the login that follows. */
  #preopened: OpenedStore | undefined;

  constructor(opts: MatrixClientOptions) {
    super(opts);
    this.#encryption = resolveEncryptionOptions(opts.encryption);
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
    try {
      return await super.login(login);
    } finally {
      await this.#releasePreopened();
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

  async #startCrypto(enc: EncryptionOptions, info: SessionInfo): Promise<void> {
    const current = this.#crypto;
    if (current?.userId === info.userId && current.deviceId === info.deviceId) return;
    await this.#stopCrypto(false);
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
      });
    } catch (e) {
      if (opened.owned) await opened.store.close();
      throw e;
    }
    this.setSyncProcessor(this.#crypto);
    this.setEventEncryptor(this.#crypto);
  }

  async #stopCrypto(releasePreopened = true): Promise<void> {
    const crypto = this.#crypto;
    this.#crypto = undefined;
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
      reportError: (error) => void this.emit("error", error),
    };
  }

  // ---- encryption: devices, trust, keys ----

  /** The encryption driver; throws `ClientCryptoError("NOT_ENABLED")` without `encryption` or a session. */
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

  /**
   * Exports the room keys of every known room (or `roomIds`) as a standard passphrase-protected
   * file (Element, matrix-js-sdk). `onProgress` counts rooms.
   */
  exportRoomKeys(
    passphrase: string,
    opts: { roomIds?: readonly string[]; onProgress?: ProgressCallback; rounds?: number } = {},
  ): Promise<string> {
    const roomIds = opts.roomIds ?? [...this.rooms.keys()];
    return this.crypto.exportRoomKeys(roomIds, passphrase, {
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

  /** Whether the room has `m.room.encryption` (from sync, else from the server). */
  async isRoomEncrypted(roomId: string): Promise<boolean> {
    return (
      this.rooms.get(roomId)?.encrypted ??
      (await this.fetchStateEvent(roomId, "m.room.encryption")) !== undefined
    );
  }

  // ---- rooms ----

  getRoom(roomId: string): Room | undefined {
    return this.rooms.get(roomId);
  }
  /** Rooms known from sync, optionally only those with the given membership. */
  getRooms(membership?: Room["membership"]): Room[] {
    const all = [...this.rooms.values()];
    return membership ? all.filter((r) => r.membership === membership) : all;
  }

  getAccountData(type: string): JsonObject | undefined {
    return this.accountData.get(type)?.content;
  }

  async setAccountData(type: string, content: JsonObject): Promise<void> {
    const userId = this.userId;
    await this.call({
      method: "PUT",
      path: path`/_matrix/client/v3/user/${userId}/account_data/${type}`,
      body: content,
      schema: emptyResponseSchema,
    });
    this.accountData.set(type, { type, content });
  }

  async setRoomAccountData(roomId: string, type: string, content: JsonObject): Promise<void> {
    const userId = this.userId;
    await this.call({
      method: "PUT",
      path: path`/_matrix/client/v3/user/${userId}/rooms/${roomId}/account_data/${type}`,
      body: content,
      schema: emptyResponseSchema,
    });
  }

  async joinedRoomIds(): Promise<string[]> {
    const res = await this.call(
      { method: "GET", path: path`/_matrix/client/v3/joined_rooms`, schema: joinedRoomsResponseSchema },
      true,
    );
    return res.joined_rooms;
  }

  /** Resolves `#alias:server` to a room ID and the servers that know it. */
  async resolveRoomAlias(alias: string): Promise<{ roomId: string; servers: string[] }> {
    const res = await this.call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/directory/room/${alias}`,
        schema: roomAliasResponseSchema,
      },
      true,
    );
    return { roomId: res.room_id, servers: res.servers ?? [] };
  }

  /** A user's global display name and avatar. */
  async getProfile(userId: string): Promise<{ displayName?: string; avatarUrl?: string }> {
    const res = await this.call(
      { method: "GET", path: path`/_matrix/client/v3/profile/${userId}`, schema: profileResponseSchema },
      true,
    );
    const out: { displayName?: string; avatarUrl?: string } = {};
    if (typeof res.displayname === "string") out.displayName = res.displayname;
    if (typeof res.avatar_url === "string") out.avatarUrl = res.avatar_url;
    return out;
  }

  async setDisplayName(displayName: string): Promise<void> {
    const userId = this.userId;
    await this.call({
      method: "PUT",
      path: path`/_matrix/client/v3/profile/${userId}/displayname`,
      body: { displayname: displayName },
      schema: emptyResponseSchema,
    });
  }

  /** Creates a room; private rooms are encrypted unless `encrypted: false`. Returns the room ID. */
  async createRoom(opts: CreateRoomOptions = {}): Promise<string> {
    const visibility = opts.visibility ?? "private";
    const encrypted = opts.encrypted ?? visibility === "private";
    const initialState = [...(opts.initialState ?? [])];
    if (encrypted)
      initialState.push({
        type: "m.room.encryption",
        state_key: "",
        content: { algorithm: "m.megolm.v1.aes-sha2" },
      });
    const body: CreateRoomRequest = {
      visibility,
      preset:
        opts.preset ??
        (visibility === "public" ? "public_chat" : opts.isDirect ? "trusted_private_chat" : "private_chat"),
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      ...(opts.topic !== undefined ? { topic: opts.topic } : {}),
      ...(opts.invite ? { invite: opts.invite } : {}),
      ...(opts.alias !== undefined ? { room_alias_name: opts.alias } : {}),
      ...(opts.roomVersion !== undefined ? { room_version: opts.roomVersion } : {}),
      ...(opts.creationContent ? { creation_content: opts.creationContent } : {}),
      ...(opts.isDirect ? { is_direct: true } : {}),
      ...(initialState.length > 0 ? { initial_state: initialState } : {}),
    };
    const res = await this.call({
      method: "POST",
      path: path`/_matrix/client/v3/createRoom`,
      body,
      schema: roomIdResponseSchema,
    });
    if (opts.isDirect) for (const u of opts.invite ?? []) await this.markDirect(res.room_id, u);
    return res.room_id;
  }

  /** Opens a direct chat with `userId` (encrypted unless told otherwise); reuses an existing one. */
  async createDirectRoom(
    userId: string,
    opts: { encrypted?: boolean; reuse?: boolean } = {},
  ): Promise<string> {
    if (opts.reuse !== false) {
      const existing = this.getDirectRoomIds(userId).find((id) => this.rooms.get(id)?.membership === "join");
      if (existing) return existing;
    }
    return this.createRoom({
      invite: [userId],
      isDirect: true,
      ...(opts.encrypted !== undefined ? { encrypted: opts.encrypted } : {}),
    });
  }

  /** Room IDs recorded in `m.direct` (for one user, or all). */
  getDirectRoomIds(userId?: string): string[] {
    const direct = this.getAccountData("m.direct") ?? {};
    const lists = userId !== undefined ? [direct[userId]] : Object.values(direct);
    const out = new Set<string>();
    for (const l of lists) if (Array.isArray(l)) for (const id of l) if (typeof id === "string") out.add(id);
    return [...out];
  }

  /** Records `roomId` as a direct chat with `userId` in `m.direct`. */
  async markDirect(roomId: string, userId: string): Promise<void> {
    const direct: JsonObject = { ...(this.getAccountData("m.direct") ?? {}) };
    const list = Array.isArray(direct[userId])
      ? (direct[userId] as unknown[]).filter((x) => typeof x === "string")
      : [];
    if (list.includes(roomId)) return;
    direct[userId] = [...list, roomId];
    await this.setAccountData("m.direct", direct);
  }

  /** Joins by room ID or alias; `via` names servers to join through. Returns the room ID. */
  async joinRoom(roomIdOrAlias: string, opts: { via?: string[]; reason?: string } = {}): Promise<string> {
    const via = opts.via?.length ? opts.via : undefined;
    const res = await this.call({
      method: "POST",
      path: path`/_matrix/client/v3/join/${roomIdOrAlias}`,
      ...(via ? { query: { via: via.join(",") } } : {}),
      body: opts.reason !== undefined ? { reason: opts.reason } : {},
      schema: roomIdResponseSchema,
    });
    return res.room_id;
  }

  async leaveRoom(roomId: string, reason?: string): Promise<void> {
    await this.membershipCall(roomId, "leave", undefined, reason);
  }
  async forgetRoom(roomId: string): Promise<void> {
    await this.call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/forget`,
      body: {},
      schema: emptyResponseSchema,
    });
  }
  async invite(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.membershipCall(roomId, "invite", userId, reason);
  }
  async kick(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.membershipCall(roomId, "kick", userId, reason);
  }
  async ban(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.membershipCall(roomId, "ban", userId, reason);
  }
  async unban(roomId: string, userId: string, reason?: string): Promise<void> {
    await this.membershipCall(roomId, "unban", userId, reason);
  }

  private async membershipCall(
    roomId: string,
    action: "leave" | "invite" | "kick" | "ban" | "unban",
    userId?: string,
    reason?: string,
  ) {
    const body: JsonObject = {};
    if (userId !== undefined) body.user_id = userId;
    if (reason !== undefined) body.reason = reason;
    await this.call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/${action}`,
      body,
      schema: emptyResponseSchema,
    });
  }

  /** Current state of a room, from the server. */
  async fetchRoomState(roomId: string): Promise<StateEvent[]> {
    return this.call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/rooms/${roomId}/state`,
        schema: roomStateResponseSchema,
      },
      true,
    );
  }

  /** One state event's content from the server, or undefined when the room has none. */
  async fetchStateEvent(roomId: string, type: string, stateKey = ""): Promise<JsonObject | undefined> {
    try {
      return await this.call(
        {
          method: "GET",
          path: statePath(roomId, type, stateKey),
          schema: jsonObjectSchema,
        },
        true,
      );
    } catch (err) {
      if (err instanceof MatrixError && err.errcode === "M_NOT_FOUND") return undefined;
      throw err;
    }
  }

  /** One page of room history (`/messages`). Encrypted events go through the E2EE hook. */
  async messages(
    roomId: string,
    opts: { from?: string; dir?: "b" | "f"; limit?: number; to?: string; filter?: JsonObject } = {},
  ): Promise<MessagesPage> {
    const res = await this.call(
      {
        method: "GET",
        path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
        query: {
          dir: opts.dir ?? "b",
          from: opts.from,
          to: opts.to,
          limit: opts.limit,
          filter: opts.filter ? JSON.stringify(opts.filter) : undefined,
        },
        schema: messagesResponseSchema,
      },
      true,
    );
    const room = this.rooms.get(roomId) ?? new Room(roomId);
    const events: RoomEvent[] = [];
    for (const raw of res.chunk)
      events.push(await toRoomEvent({ logger: this.logger }, this.syncProcessor, room, raw));
    const page: MessagesPage = { events, state: res.state ?? [], start: res.start };
    if (res.end !== undefined) page.end = res.end;
    return page;
  }

  /** Walks history backwards from now (or `from`), newest first, page by page. */
  async *history(roomId: string, opts: { from?: string; pageSize?: number } = {}): AsyncGenerator<RoomEvent> {
    let from = opts.from;
    for (;;) {
      const page = await this.messages(roomId, {
        dir: "b",
        limit: opts.pageSize ?? 50,
        ...(from !== undefined ? { from } : {}),
      });
      yield* page.events;
      if (page.end === undefined || page.events.length === 0) return;
      from = page.end;
    }
  }

  /** Upgrades a room to `newVersion`; returns the replacement room ID. */
  async upgradeRoom(roomId: string, newVersion: string): Promise<string> {
    const res = await this.call({
      method: "POST",
      path: path`/_matrix/client/v3/rooms/${roomId}/upgrade`,
      body: { new_version: newVersion },
      schema: upgradeRoomResponseSchema,
    });
    return res.replacement_room;
  }

  /**
   * Follows `m.room.tombstone` links from `roomId` to the newest room, joining each successor
   * (unless `join: false`). Returns the last room ID (the argument itself when it was not upgraded).
   */
  async followTombstone(roomId: string, opts: { join?: boolean } = {}): Promise<string> {
    let current = roomId;
    const seen = new Set([current]);
    for (let hop = 0; hop < MAX_TOMBSTONE_HOPS; hop++) {
      const local = this.rooms.get(current)?.tombstone?.replacementRoomId;
      const next = local ?? str(await this.fetchStateEvent(current, "m.room.tombstone"), "replacement_room");
      if (next === undefined || seen.has(next)) return current;
      if (opts.join !== false) await this.joinRoom(next, { via: [serverOf(current)] });
      seen.add(next);
      current = next;
    }
    return current;
  }

  protected override async prepareOutgoing(
    roomId: string,
    type: string,
    content: JsonObject,
  ): Promise<{ type: string; content: JsonObject }> {
    let room = this.rooms.get(roomId);
    const encrypted =
      room?.encrypted ?? (await this.fetchStateEvent(roomId, "m.room.encryption")) !== undefined;
    if (!encrypted) return { type, content };
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

/** The state path; an empty state key is left out, as some servers do not route a trailing slash. */
function statePath(roomId: string, type: string, stateKey: string): RequestPath {
  return stateKey === ""
    ? path`/_matrix/client/v3/rooms/${roomId}/state/${type}`
    : path`/_matrix/client/v3/rooms/${roomId}/state/${type}/${stateKey}`;
}

function str(c: JsonObject | undefined, k: string): string | undefined {
  const v = c?.[k];
  return typeof v === "string" ? v : undefined;
}

/** The server part of a room or user ID (`!abc:example.org` → `example.org`). */
function serverOf(id: string): string {
  const i = id.indexOf(":");
  return i >= 0 ? id.slice(i + 1) : id;
}
