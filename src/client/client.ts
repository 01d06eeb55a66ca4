// The Matrix client, composed of parts with narrow hosts: the session (session/), what sync knows
// and the loop (sync/), the account's data (account.ts), rooms and sending (rooms/), media,
// devices and the E2EE part (encryption/session.ts). They are built and wired in client-parts.ts,
// and a session's lifecycle (login, restore, logout, close) runs across them in client-lifecycle.ts;
// this file is the public API, each method handing on to one part.

import type {
  CrossSigningStatus,
  DeviceInfo,
  DeviceTrust,
  HeldKeyRequest,
  UserIdentityInfo,
} from "../e2ee/index.ts";
import type { JsonObject, SyncResponse, ToDeviceEvent, WhoamiResponse } from "../wire/index.ts";
import type { AccountApi } from "./account.ts";
import type { ClientLifecycle } from "./client-lifecycle.ts";
import type { MatrixClientOptions } from "./client-options.ts";
import { buildClientParts, type ClientHooks } from "./client-parts.ts";
import type { ClientStore, StoredSession } from "./client-store/index.ts";
import { DeviceApi } from "./devices.ts";
import { discoverHomeserver } from "./discovery.ts";
// Straight from the files rather than the encryption barrel, which also leads to the engine: the
// engine is loaded on first use (`EncryptionSession.start`), and a bundler splits it off only when
// the entry's static imports do not reach it.
import {
  downloadAttachmentBytes,
  downloadAttachmentStream,
  downloadThumbnailBytes,
} from "./encryption/attachments.ts";
import type { ClientCrypto } from "./encryption/client-crypto.ts";
import type {
  KeyImportResult,
  ProgressCallback,
  RoomTrustRequirements,
} from "./encryption/client-crypto-types.ts";
import type { EncryptionSession } from "./encryption/session.ts";
import { ClientError } from "./errors.ts";
import { TypedEmitter } from "./events/emitter.ts";
import type { ClientEventMap, RoomEvent, SyncState } from "./events/types.ts";
import type { HttpClient } from "./http.ts";
import { silentLogger } from "./logger.ts";
import {
  type DownloadedMedia,
  MAX_BUFFERED_THUMBNAIL_BYTES,
  type MediaApi,
  type ThumbnailOptions,
  type UploadData,
  type UploadOptions,
} from "./media.ts";
import type { Presence } from "./presence.ts";
import type { CreateRoomOptions, MessagesPage, RelationsPage, RoomsApi } from "./rooms/api.ts";
import type { MessageType } from "./rooms/content.ts";
import type { Room } from "./rooms/room.ts";
import type { Sender, SendOptions } from "./rooms/sender.ts";
import type { PasswordLogin, RegisterOptions, Session, SessionInfo } from "./session/session.ts";
import { type LoginFlow, ssoRedirectUrl } from "./session/sso.ts";
import type { EventEncryptor, SyncProcessor } from "./sync/hooks.ts";
import type { SyncRunner } from "./sync/runner.ts";
import type { SyncedState } from "./sync/state.ts";
import type { UiaAuth } from "./uia.ts";
import type { VerificationRequest } from "./verification/request.ts";

export class MatrixClient extends TypedEmitter<ClientEventMap> {
  readonly http: HttpClient;
  readonly store: ClientStore;
  readonly media: MediaApi;
  readonly #session: Session;
  readonly #synced: SyncedState;
  readonly #sync: SyncRunner;
  readonly #account: AccountApi;
  readonly #rooms: RoomsApi;
  readonly #sender: Sender;
  readonly #e2ee: EncryptionSession;
  readonly #hooks: ClientHooks;
  readonly #lifecycle: ClientLifecycle;
  #devices: DeviceApi | undefined;

  constructor(opts: MatrixClientOptions) {
    const logger = opts.logger ?? silentLogger;
    super(logger);
    const parts = buildClientParts(opts, logger, this);
    this.http = parts.http;
    this.store = parts.store;
    this.media = parts.media;
    this.#hooks = parts.hooks;
    this.#session = parts.session;
    this.#synced = parts.synced;
    this.#sync = parts.sync;
    this.#account = parts.account;
    this.#e2ee = parts.e2ee;
    this.#rooms = parts.rooms;
    this.#sender = parts.sender;
    this.#lifecycle = parts.lifecycle;
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
    // Restored from the store, not written back: a store shared with a tab that has logged out
    // since (or in as another device) keeps what that tab left.
    await client.restore();
    return client;
  }

  // ---- session ----

  get homeserverUrl(): string {
    return this.http.baseUrl;
  }
  get isLoggedIn(): boolean {
    return this.#session.current !== undefined;
  }
  get userId(): string {
    return this.#session.require().userId;
  }
  get deviceId(): string {
    return this.#session.require().deviceId;
  }
  /** The session without its access token. */
  get sessionInfo(): SessionInfo | undefined {
    return this.#session.info;
  }

  /**
   * Password login. Logging in again as the stored user reuses the stored device; with
   * `encryption.restoreDeviceId`, the device the crypto store remembers. A crypto store of
   * another user or device refuses the account (and the device the login made is logged out).
   */
  login(opts: PasswordLogin): Promise<SessionInfo> {
    return this.#lifecycle.login(opts);
  }

  /**
   * The login flows the homeserver offers (`GET /login`, no session needed), validated: with
   * `m.login.sso`, its identity providers. A server that only takes OAuth 2.0 login answers
   * `MatrixError` `M_UNRECOGNIZED` (HTTP 404).
   */
  getLoginFlows(): Promise<LoginFlow[]> {
    return this.#session.loginFlows();
  }

  /**
   * The homeserver URL to open in the user's browser for SSO login (with `idpId`, that identity
   * provider's): once done, the server sends the browser to `redirectUrl` with a `loginToken`
   * query parameter, for {@link loginWithToken}.
   */
  ssoRedirectUrl(redirectUrl: string, idpId?: string): string {
    return ssoRedirectUrl(this.http.baseUrl, redirectUrl, idpId);
  }

  /** Login with an `m.login.token` (e.g. from SSO). */
  async loginWithToken(
    token: string,
    opts: { deviceId?: string; deviceDisplayName?: string } = {},
  ): Promise<SessionInfo> {
    return this.#lifecycle.loginWithToken(token, opts);
  }

  /**
   * Registers an account (servers with open registration, completing the `m.login.dummy` stage) and
   * logs it in. With `encryption`, a crypto store of another user or device refuses the account: see {@link login}.
   */
  register(opts: RegisterOptions): Promise<SessionInfo> {
    return this.#lifecycle.register(opts);
  }

  /**
   * Resumes a saved session (from the argument or the store) with its cached rooms and sync token;
   * with `encryption`, opens the crypto store and uploads keys if needed. Like the logins, refused
   * with `ClientError("IN_SYNC_HANDLING")` from a listener of a sync response being handled.
   */
  restore(session?: StoredSession): Promise<SessionInfo> {
    return this.#lifecycle.restore(session);
  }

  whoami(): Promise<WhoamiResponse> {
    return this.#account.whoami();
  }

  /**
   * Invalidates the access token and deletes the device server-side (its encryption keys with it),
   * then forgets the session locally. To stop a bot, call `close()` instead: logging out on every
   * shutdown makes each start a new device that others cannot yet encrypt to. Awaited from a
   * listener of a sync response (or work it awaits) on Node, it returns at once and the logout
   * goes on once the listener returned, after the response is handled and saved (a later call from
   * elsewhere waits for it). In browsers, which cannot tell a listener's calls, it stops the sync
   * loop without waiting for that response's listeners (they run on) and does not save the
   * response, then logs out and returns: see {@link close}.
   * When the server does not log the session out (a 5xx, the network), the session goes on (the
   * sync loop started again if it ran, a dehydration schedule resumed) and it rejects with
   * `ClientError("LOGOUT_FAILED")`, the server's error as its `cause`.
   */
  logout(): Promise<void> {
    return this.#lifecycle.logout();
  }

  /**
   * Stops syncing, waits for queued sends and closes the store (and the crypto store). Awaited from
   * a listener of a sync response (a bot's `!quit`, or work the listener awaits) on Node, it
   * returns at once and the close goes on once the listener returned: the response is handled and
   * saved first (a later `close()` waits for it).
   *
   * In browsers there is no async context to tell a listener's calls by, so any stop (`close()`,
   * `logout()`, `stopSync()`) asked for while a response's listeners run no longer waits for them:
   * they run on, the listeners of that response's later events are still called (not waited for
   * either), and the close returns once the stores are closed, from a listener too. That
   * response's position (and any after it) is not saved, so its events come again at the next
   * start (at-least-once: a command such as `!quit` is seen again, and should be recognised by its
   * event ID). Its handling, crypto work included, still runs to its end before the stores close,
   * and nothing is written after; a listener still running gets the stores' errors
   * (`ClientError("STORE_CLOSED")`, `ClientCryptoError("CLOSED")`) from calls that need them.
   */
  close(): Promise<void> {
    return this.#lifecycle.close();
  }

  // ---- E2EE hooks ----

  setSyncProcessor(p: SyncProcessor | undefined): void {
    this.#hooks.syncProcessor = p;
  }
  setEventEncryptor(e: EventEncryptor | undefined): void {
    this.#hooks.eventEncryptor = e;
  }

  // ---- sync ----

  /**
   * Starts the sync loop; resolves after the first response was processed. An appservice user
   * (`appserviceUser`) has no loop: its sync data comes from transactions through `feedSync`, so
   * this only checks the session (and code written for ordinary clients, such as a bot, runs on it).
   */
  startSync(): Promise<void> {
    return this.#sync.start();
  }

  /** True when sync data comes from an appservice's transactions rather than `/sync`. */
  get isAppserviceUser(): boolean {
    return this.#sync.isAppserviceUser;
  }

  /**
   * Stops the sync loop (the in-flight long-poll, or a `syncOnce`'s request, is aborted; nothing
   * half-processed is saved); a response already received is handled and saved first. Called from
   * a listener of a response being handled (or what it awaits) on Node, it returns at once, and
   * the loop stops once that response is handled and saved (after the listener returned). In
   * browsers it stops waiting for the listeners of the responses being handled, which are not
   * saved (they come again; see {@link close}); a `syncOnce()` whose response was so cut short
   * rejects with `ClientError("STOPPED")`. The loop started again saves what they changed with its
   * next response.
   */
  stopSync(): Promise<void> {
    return this.#sync.stopSoon();
  }

  /**
   * Handles a sync response that came from elsewhere than `/sync`: an application service builds
   * one per virtual user from each transaction. It goes through the same steps as a synced one
   * (E2EE first, state, events, then the token saved), in turn with any other. Not while the sync
   * loop runs: the two would interleave positions. With `deferVerification`, its to-device
   * verification events (decrypted or not) are emitted as `toDevice` but reach the verification
   * flow only when handed to `emitDeferredToDevice`.
   */
  feedSync(res: SyncResponse, opts: { deferVerification?: boolean } = {}): Promise<void> {
    const crypto = opts.deferVerification === true ? this.#e2ee.running : undefined;
    if (crypto === undefined) return this.#sync.feed(res);
    const release = crypto.deferVerificationOf(res.next_batch);
    return this.#sync.feed(res).finally(release);
  }

  /**
   * To-device events that a `feedSync(res, { deferVerification: true })` emitted, handed on now,
   * in order: each verification event to the verification flow (a request then comes as
   * `verification.request`), then each emitted as `toDevice` again. For an appservice, whose
   * virtual user's held messages are decrypted before its caller has put its handlers on.
   */
  async emitDeferredToDevice(events: readonly ToDeviceEvent[]): Promise<void> {
    for (const event of events) {
      const crypto = this.#e2ee.running;
      if (crypto !== undefined && event.type.startsWith("m.key.verification.")) {
        await crypto.receiveDeferredVerification([event]);
      }
      await this.emit("toDevice", event);
    }
  }

  /** One sync request and its handling, outside the loop (scripts, tests). */
  syncOnce(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    return this.#sync.once(opts);
  }

  get syncState(): SyncState {
    return this.#sync.state;
  }
  get nextBatch(): string | undefined {
    return this.#sync.nextBatch;
  }

  // ---- account ----

  getAccountData(type: string): JsonObject | undefined {
    return this.#account.getAccountData(type);
  }
  setAccountData(type: string, content: JsonObject): Promise<void> {
    return this.#account.setAccountData(type, content);
  }
  setRoomAccountData(roomId: string, type: string, content: JsonObject): Promise<void> {
    return this.#account.setRoomAccountData(roomId, type, content);
  }
  /** A user's global display name and avatar. */
  getProfile(userId: string): Promise<{ displayName?: string; avatarUrl?: string }> {
    return this.#account.getProfile(userId);
  }
  setDisplayName(displayName: string): Promise<void> {
    return this.#account.setDisplayName(displayName);
  }

  /**
   * A user's presence as sync last pushed it (not kept across restarts; at most
   * `MAX_PRESENCE_USERS` users, the least recently updated forgotten first).
   */
  getPresence(userId: string): Presence | undefined {
    return this.#synced.presence.get(userId);
  }

  // ---- rooms ----

  getRoom(roomId: string): Room | undefined {
    return this.#synced.room(roomId);
  }
  /** Rooms known from sync, optionally only those with the given membership. */
  getRooms(membership?: Room["membership"]): Room[] {
    return this.#synced.roomList(membership);
  }
  joinedRoomIds(): Promise<string[]> {
    return this.#rooms.joinedRoomIds();
  }
  /** Resolves `#alias:server` to a room ID and the servers that know it. */
  resolveRoomAlias(alias: string): Promise<{ roomId: string; servers: string[] }> {
    return this.#rooms.resolveRoomAlias(alias);
  }
  /** Creates a room; private rooms are encrypted unless `encrypted: false`. Returns the room ID. */
  createRoom(opts: CreateRoomOptions = {}): Promise<string> {
    return this.#rooms.createRoom(opts);
  }
  /** Opens a direct chat with `userId` (encrypted unless told otherwise); reuses an existing one. */
  createDirectRoom(userId: string, opts: { encrypted?: boolean; reuse?: boolean } = {}): Promise<string> {
    return this.#rooms.createDirectRoom(userId, opts);
  }
  /** Room IDs recorded in `m.direct` (for one user, or all). */
  getDirectRoomIds(userId?: string): string[] {
    return this.#rooms.getDirectRoomIds(userId);
  }
  /** Records `roomId` as a direct chat with `userId` in `m.direct`. */
  markDirect(roomId: string, userId: string): Promise<void> {
    return this.#rooms.markDirect(roomId, userId);
  }
  /**
   * Joins by room ID or alias; `via` names servers to join through. Returns the room ID. With
   * encryption, accepting an invite lets the inviter's history-sharing bundle in (MSC4268): it is
   * imported if it came, or when it comes within a day.
   */
  joinRoom(roomIdOrAlias: string, opts: { via?: string[]; reason?: string } = {}): Promise<string> {
    return this.#rooms.joinRoom(roomIdOrAlias, opts);
  }
  leaveRoom(roomId: string, reason?: string): Promise<void> {
    return this.#rooms.leaveRoom(roomId, reason);
  }
  async forgetRoom(roomId: string): Promise<void> {
    await this.#rooms.forgetRoom(roomId);
    await this.#sync.forget(roomId);
  }
  /**
   * Invites `userId`. With encryption, in an encrypted room whose history is `shared` or
   * `world_readable`, first sends them the room's shareable keys (MSC4268 history sharing) so
   * they can read what was said before; a failure there is reported (`error`), not thrown.
   */
  invite(roomId: string, userId: string, reason?: string): Promise<void> {
    return this.#rooms.invite(roomId, userId, reason);
  }
  kick(roomId: string, userId: string, reason?: string): Promise<void> {
    return this.#rooms.kick(roomId, userId, reason);
  }
  ban(roomId: string, userId: string, reason?: string): Promise<void> {
    return this.#rooms.ban(roomId, userId, reason);
  }
  unban(roomId: string, userId: string, reason?: string): Promise<void> {
    return this.#rooms.unban(roomId, userId, reason);
  }
  /** Current state of a room, from the server. */
  fetchRoomState(roomId: string) {
    return this.#rooms.fetchRoomState(roomId);
  }
  /** One state event's content from the server, or undefined when the room has none. */
  fetchStateEvent(roomId: string, type: string, stateKey = ""): Promise<JsonObject | undefined> {
    return this.#rooms.fetchStateEvent(roomId, type, stateKey);
  }
  /**
   * One event from the server (`/rooms/{roomId}/event/{eventId}`), decrypted when it is encrypted:
   * what a push notification names (a service worker shows it without syncing).
   */
  fetchEvent(roomId: string, eventId: string): Promise<RoomEvent> {
    return this.#rooms.fetchEvent(roomId, eventId);
  }
  /**
   * One page of the events relating to `eventId` (`/relations`), newest first, decrypted where
   * they can be; `relType` (`m.annotation`: reactions) and `eventType` narrow it.
   */
  relations(
    roomId: string,
    eventId: string,
    opts: { relType?: string; eventType?: string; from?: string; limit?: number } = {},
  ): Promise<RelationsPage> {
    return this.#rooms.relations(roomId, eventId, opts);
  }
  /** One page of room history (`/messages`). Encrypted events go through the E2EE hook. */
  messages(
    roomId: string,
    opts: { from?: string; dir?: "b" | "f"; limit?: number; to?: string; filter?: JsonObject } = {},
  ): Promise<MessagesPage> {
    return this.#rooms.messages(roomId, opts);
  }
  /** Walks history backwards from now (or `from`), newest first, page by page. */
  history(roomId: string, opts: { from?: string; pageSize?: number } = {}): AsyncGenerator<RoomEvent> {
    return this.#rooms.history(roomId, opts);
  }
  /** Upgrades a room to `newVersion`; returns the replacement room ID. */
  upgradeRoom(roomId: string, newVersion: string): Promise<string> {
    return this.#rooms.upgradeRoom(roomId, newVersion);
  }
  /**
   * Follows `m.room.tombstone` links from `roomId` to the newest room, joining each successor
   * (unless `join: false`). Returns the last room ID (the argument itself when it was not upgraded).
   */
  followTombstone(roomId: string, opts: { join?: boolean } = {}): Promise<string> {
    return this.#rooms.followTombstone(roomId, opts);
  }
  /**
   * Whether the room is encrypted: recorded as such by the crypto store (then nothing the server
   * sends later turns it off), or with `m.room.encryption` in its state (from sync, else the server).
   * With `encryption` configured, a "no" needs the crypto store's answer: it waits for a login or
   * restore under way, and throws `ClientCryptoError` (`NOT_STARTED`, `CLOSED`) when encryption
   * does not run. Sends decide the same way, so they never guess a room unencrypted.
   */
  isRoomEncrypted(roomId: string): Promise<boolean> {
    return this.#rooms.isRoomEncrypted(roomId);
  }

  // ---- sending ----

  /** Sends any room event; queued per room, retried on transient failure. Returns the event ID. */
  sendEvent(
    roomId: string,
    type: string,
    content: JsonObject,
    opts: { txnId?: string } = {},
  ): Promise<string> {
    return this.#sender.sendEvent(roomId, type, content, opts);
  }
  /** Sends an `m.room.message` with reply/thread/mention options applied. */
  sendMessage(roomId: string, content: JsonObject, opts: SendOptions = {}): Promise<string> {
    return this.#sender.sendMessage(roomId, content, opts);
  }
  sendText(roomId: string, body: string, opts: SendOptions = {}): Promise<string> {
    return this.#sender.sendText(roomId, body, "m.text", opts);
  }
  sendNotice(roomId: string, body: string, opts: SendOptions = {}): Promise<string> {
    return this.#sender.sendText(roomId, body, "m.notice", opts);
  }
  sendEmote(roomId: string, body: string, opts: SendOptions = {}): Promise<string> {
    return this.#sender.sendText(roomId, body, "m.emote", opts);
  }
  /** HTML message; `body` is the plain fallback (derived from the HTML when omitted). */
  sendHtml(
    roomId: string,
    html: string,
    opts: SendOptions & { body?: string; msgtype?: MessageType } = {},
  ): Promise<string> {
    return this.#sender.sendHtml(roomId, html, opts);
  }
  /** Replaces the content of `eventId` (an edit). A string is sent as new `m.text` body. */
  editMessage(
    roomId: string,
    eventId: string,
    newContent: string | JsonObject,
    opts: { txnId?: string } = {},
  ): Promise<string> {
    return this.#sender.editMessage(roomId, eventId, newContent, opts);
  }
  react(roomId: string, eventId: string, key: string, opts: { txnId?: string } = {}): Promise<string> {
    return this.#sender.react(roomId, eventId, key, opts);
  }
  /** Redacts `eventId`; queued with the room's other sends. Returns the redaction's event ID. */
  redact(roomId: string, eventId: string, opts: { reason?: string; txnId?: string } = {}): Promise<string> {
    return this.#sender.redact(roomId, eventId, opts);
  }
  /** Sets a state event (never encrypted). Returns the event ID. */
  sendStateEvent(roomId: string, type: string, stateKey: string, content: JsonObject): Promise<string> {
    return this.#sender.sendStateEvent(roomId, type, stateKey, content);
  }
  sendTyping(roomId: string, typing: boolean, timeoutMs = 30_000): Promise<void> {
    return this.#sender.sendTyping(roomId, typing, timeoutMs);
  }
  /** Sends a read receipt (`m.read`, or `m.read.private`), optionally for one thread. */
  sendReadReceipt(
    roomId: string,
    eventId: string,
    opts: { private?: boolean; threadId?: string } = {},
  ): Promise<void> {
    return this.#sender.sendReadReceipt(roomId, eventId, opts);
  }
  /**
   * Uploads a file and posts it as `m.file` / `m.image` / `m.audio` / `m.video` (by content type
   * unless given). In an encrypted room the file is encrypted first (v2: the server stores only
   * ciphertext, the key travels in the encrypted event's `file`).
   */
  sendFile(
    roomId: string,
    data: UploadData,
    opts: { filename: string; contentType?: string; size?: number; msgtype?: string } & SendOptions,
  ): Promise<string> {
    return this.#sender.sendFile(roomId, data, opts);
  }

  // ---- media ----

  uploadMedia(data: UploadData, opts: UploadOptions = {}): Promise<string> {
    this.#session.require();
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
   * A thumbnail the server makes of `mxcUri` (authenticated media, the legacy endpoint on older
   * servers), at least `width` × `height` when it can. Not for encrypted files, whose bytes the
   * server cannot read: see `downloadAttachmentThumbnail`. More than `maxBytes` (by default
   * `MAX_BUFFERED_THUMBNAIL_BYTES`, 20 MiB) fails with `TOO_LARGE`.
   */
  downloadThumbnail(
    mxcUri: string,
    opts: ThumbnailOptions & { maxBytes?: number },
  ): Promise<DownloadedMedia & { data: Uint8Array }> {
    return this.media.thumbnail(mxcUri, opts);
  }

  downloadThumbnailStream(mxcUri: string, opts: ThumbnailOptions) {
    return this.media.thumbnailStream(mxcUri, opts);
  }

  /**
   * The bytes of the thumbnail a media event stores (`thumbnailOf`): `info.thumbnail_file` is
   * downloaded and decrypted (its hash checked first), `info.thumbnail_url` downloaded as is, even
   * in an encrypted room (its sender chose to upload it unencrypted). `NO_ATTACHMENT` when the event
   * stores none: in an unencrypted room ask the server (`downloadThumbnail(content.url, …)`).
   * More than `maxBytes` (by default `MAX_BUFFERED_THUMBNAIL_BYTES`) fails with `TOO_LARGE`.
   */
  downloadAttachmentThumbnail(content: JsonObject, opts: { signal?: AbortSignal; maxBytes?: number } = {}) {
    const capped = { ...opts, maxBytes: opts.maxBytes ?? MAX_BUFFERED_THUMBNAIL_BYTES };
    return downloadThumbnailBytes(content, async (mxc) => (await this.downloadMedia(mxc, capped)).data);
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

  // ---- devices ----

  /** The account's own devices: list, rename, delete (with the password or another auth stage). */
  get devices(): DeviceApi {
    this.#devices ??= new DeviceApi({
      http: this.http,
      session: () => this.#session.require(),
      e2eeDevices: async (ids) => this.#e2ee.running?.getOwnDevices(ids) ?? [],
    });
    return this.#devices;
  }

  // ---- encryption: devices, trust, keys ----

  /** The encryption driver; throws `ClientCryptoError("NOT_ENABLED")` without `encryption` or a session. */
  get crypto(): ClientCrypto {
    return this.#e2ee.driver;
  }

  get isEncryptionEnabled(): boolean {
    return this.#e2ee.running !== undefined;
  }

  /**
   * Interactive verification (SAS emoji/decimals, QR): with one of our own devices over to-device
   * (`deviceId`, or all our other devices), with another user in a DM (created if needed).
   * Incoming requests arrive as `verification.request` events. See docs/verification.md.
   */
  requestVerification(userId: string, deviceId?: string): Promise<VerificationRequest> {
    return this.#e2ee.verification.request(userId, deviceId);
  }

  /** SAS with one device without a request first (the older to-device flow, e.g. matrix-nio). */
  startSasVerification(userId: string, deviceId: string): Promise<VerificationRequest> {
    return this.#e2ee.verification.startSasWithoutRequest(userId, deviceId);
  }

  /** Verification flows this device knows of (open, and finished in the last minutes). */
  getVerificationRequests(): VerificationRequest[] {
    return this.#e2ee.verification.list();
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
   * Room-key requests of our own devices that are not verified yet, held until `verifyDevice` or
   * a key query showing the device cross-signed by our trusted identity (answered then), or
   * `blacklistDevice` (dropped). Each also raises `crypto.keyRequest`.
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
    await this.crypto.setRoomVerifyDevices(this.#synced.encryptedRoom(roomId), verifyDevices);
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
  verifyUser(userId: string, opts: { masterKey?: string } = {}): Promise<UserIdentityInfo> {
    return this.crypto.verifyUser(userId, opts);
  }
  /** Accepts a user's changed identity (clears `changed` and a violation). */
  acceptIdentityChange(userId: string, opts: { masterKey?: string } = {}): Promise<UserIdentityInfo> {
    return this.crypto.acceptIdentityChange(userId, opts);
  }
  /** Withdraws a user's verification (clears a verification violation). */
  withdrawVerification(userId: string): Promise<UserIdentityInfo> {
    return this.crypto.withdrawVerification(userId);
  }
  /**
   * Per-room trust requirements (override `encryption.shareWith` / `senderRequirement` /
   * `errorOnVerifiedUserProblems`), kept in the crypto store across restarts.
   */
  async setRoomTrustRequirements(roomId: string, requirements: RoomTrustRequirements): Promise<void> {
    await this.crypto.setRoomTrustRequirements(this.#synced.encryptedRoom(roomId), requirements);
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

  toJSON(): Record<string, unknown> {
    return { type: "MatrixClient", homeserverUrl: this.homeserverUrl, ...this.sessionInfo };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    const s = this.sessionInfo;
    return `MatrixClient(${this.homeserverUrl}${s ? `, ${s.userId}/${s.deviceId}` : ", logged out"})`;
  }
}
