// The devserver's state and the operations routes share: accounts, events, notifications.
import { randomBytes } from "node:crypto";
import type { Registration } from "../wire/appservice.ts";
import { AppserviceRegistry } from "./appservice/registry.ts";
import { MatrixError } from "./errors.ts";
import { computeEventId } from "./event-format.ts";
import { Notifier } from "./notifier.ts";
import { PasswordThrottle } from "./password.ts";
import {
  AccountStore,
  AppserviceStore,
  type Db,
  KeyStore,
  MiscStore,
  openDatabase,
  RoomStore,
  StreamCounter,
} from "./storage/index.ts";
import type { Authed, JsonObject, RoomEvent, StreamEvent } from "./types.ts";
import { Typing } from "./typing.ts";

/** Most access tokens kept in the in-memory lookup cache. */
export const MAX_CACHED_TOKENS = 10_000;

/**
 * Most devices one account may have (the client keeps as many per user). A login or device creation
 * past it is refused with 403 M_FORBIDDEN; deleting a device makes room.
 */
export const MAX_DEVICES_PER_ACCOUNT = 1000;

export interface RateLimitConfig {
  /** Sustained requests per second per access token (or per IP when unauthenticated). */
  perSecond: number;
  /** Requests allowed in a burst above the sustained rate. */
  burst: number;
}

export interface HomeserverConfig {
  serverName: string;
  dbPath: string;
  rateLimit?: RateLimitConfig;
  /** Lifetime of access tokens issued with a refresh token. */
  accessTokenLifetimeMs?: number;
  /** The time access tokens expire by (ms since the epoch); default `Date.now`. Tests step it. */
  now?: () => number;
  /** Application services (parsed registration files). */
  appservices?: readonly Registration[];
  /** Media bytes one user may store; MAX_MEDIA_BYTES_PER_USER unless a test sets less. */
  maxMediaBytesPerUser?: number;
}

/** Most bytes of media one user may store (a devserver keeps media in its database, often in memory). */
export const MAX_MEDIA_BYTES_PER_USER = 1024 * 1024 * 1024;

/** Default lifetime of an access token that comes with a refresh token (Synapse's default). */
export const DEFAULT_ACCESS_TOKEN_LIFETIME_MS = 5 * 60_000;

/** A fresh login: the access token, and with refresh tokens the refresh token and lifetime. */
export interface Session extends Authed {
  refreshToken?: string;
  expiresInMs?: number;
}

export function randomId(bytes = 12): string {
  return randomBytes(bytes).toString("base64url");
}

/** Characters a device ID uses: upper-case letters, as Synapse's are. */
export function newDeviceId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const bytes = randomBytes(10);
  let out = "";
  for (const b of bytes) out += alphabet[b % 26];
  return out;
}

export interface AppendOptions {
  stateKey?: string;
  txn?: { deviceId: string; txnId: string };
  /** Extra top-level fields (e.g. `redacts` for room version 10 redactions). */
  extra?: JsonObject;
}

export class Homeserver {
  readonly serverName: string;
  readonly db: Db;
  readonly stream: StreamCounter;
  readonly accounts: AccountStore;
  readonly rooms: RoomStore;
  readonly keys: KeyStore;
  readonly misc: MiscStore;
  readonly appservices: AppserviceRegistry;
  readonly appserviceState: AppserviceStore;
  readonly notifier = new Notifier();
  readonly passwords = new PasswordThrottle();
  readonly typing: Typing;
  readonly config: HomeserverConfig;
  private closed = false;
  /** Valid tokens seen recently; entries go when their device does. */
  private readonly tokenCache = new Map<string, { auth: Authed; expiresTs: number | null }>();
  private readonly toDeviceAcked = new Map<string, number>();
  private readonly runInTx: (fn: () => unknown) => unknown;

  constructor(config: HomeserverConfig) {
    this.config = config;
    this.serverName = config.serverName;
    // Checked before the database opens: a bad registration leaves nothing to close.
    this.appservices = new AppserviceRegistry(config.appservices ?? [], config.serverName);
    this.db = openDatabase(config.dbPath);
    this.stream = new StreamCounter(this.db);
    this.accounts = new AccountStore(this.db);
    this.rooms = new RoomStore(this.db);
    this.keys = new KeyStore(this.db);
    this.misc = new MiscStore(this.db);
    this.appserviceState = new AppserviceStore(this.db);
    // Each appservice's sender user exists from the start, as on Synapse.
    for (const as of this.appservices.list)
      this.accounts.createUser(as.sender, null, as.reg.sender_localpart);
    // One transaction wrapper for all calls: building one per call showed up in profiles.
    this.runInTx = this.db.transaction((fn: () => unknown) => fn());
    this.typing = new Typing((roomId) => this.notifyRoom(roomId));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.typing.close();
    this.notifier.notifyAll();
    this.db.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs `fn` in one SQLite transaction (all-or-nothing for multi-row writes; nested calls use savepoints). */
  tx<T>(fn: () => T): T {
    return this.runInTx(fn) as T;
  }

  isLocalUser(userId: string): boolean {
    return userId.startsWith("@") && userId.endsWith(`:${this.serverName}`);
  }

  authenticate(token: string): Authed {
    let entry = this.tokenCache.get(token);
    if (!entry) {
      const row = this.accounts.lookupToken(token);
      if (!row) throw new MatrixError(401, "M_UNKNOWN_TOKEN", "Unknown access token", { soft_logout: false });
      entry = { auth: { userId: row.user_id, deviceId: row.device_id, token }, expiresTs: row.expires_ts };
      if (this.tokenCache.size >= MAX_CACHED_TOKENS) this.tokenCache.clear();
      this.tokenCache.set(token, entry);
    }
    // An expired token that came with a refresh token: the client should refresh (soft logout).
    if (entry.expiresTs !== null && this.now() >= entry.expiresTs) {
      throw new MatrixError(401, "M_UNKNOWN_TOKEN", "Access token has expired", { soft_logout: true });
    }
    return entry.auth;
  }

  private forgetCachedTokens(userId: string, deviceId: string): void {
    for (const [t, e] of this.tokenCache) {
      if (e.auth.userId === userId && e.auth.deviceId === deviceId) this.tokenCache.delete(t);
    }
  }

  /**
   * Creates (or reuses) a device and issues a new access token for it. With `refresh`, the access
   * token expires after `accessTokenLifetimeMs` and a refresh token comes with it.
   */
  createSession(
    userId: string,
    deviceId: string | undefined,
    displayName: string | null,
    ip: string,
    refresh = false,
  ): Session {
    const id = deviceId ?? newDeviceId();
    const isNew = !this.accounts.getDevice(userId, id);
    if (isNew) this.checkRoomForDevice(userId);
    const session = this.tx(() => {
      this.accounts.upsertDevice(userId, id, displayName, ip);
      return this.issueTokens(userId, id, refresh);
    });
    if (isNew) this.deviceListChanged(userId);
    return session;
  }

  /** Refuses a new device for a user who has MAX_DEVICES_PER_ACCOUNT already. */
  checkRoomForDevice(userId: string): void {
    if (this.accounts.countDevices(userId) >= MAX_DEVICES_PER_ACCOUNT) {
      throw new MatrixError(403, "M_FORBIDDEN", `An account has at most ${MAX_DEVICES_PER_ACCOUNT} devices`);
    }
  }

  private addToken(
    token: string,
    userId: string,
    deviceId: string,
    expiresTs?: number,
    parent: string | null = null,
  ): void {
    this.accounts.addToken(token, userId, deviceId, expiresTs, parent);
    if (this.accounts.pruneTokens(userId, deviceId)) this.forgetCachedTokens(userId, deviceId);
  }

  /** `refresh`: with a refresh token; `parent`: the refresh token a refresh traded for them. */
  private issueTokens(
    userId: string,
    deviceId: string,
    refresh: boolean,
    parent: string | null = null,
  ): Session {
    const token = `kr_${randomId(32)}`;
    if (!refresh) {
      this.addToken(token, userId, deviceId);
      return { userId, deviceId, token };
    }
    const lifetime = this.config.accessTokenLifetimeMs ?? DEFAULT_ACCESS_TOKEN_LIFETIME_MS;
    const refreshToken = `krr_${randomId(32)}`;
    this.addToken(token, userId, deviceId, this.now() + lifetime, parent);
    this.accounts.addRefreshToken(refreshToken, userId, deviceId, parent);
    return { userId, deviceId, token, refreshToken, expiresInMs: lifetime };
  }

  /** The time access tokens expire by (`HomeserverConfig.now`). */
  private now(): number {
    return this.config.now?.() ?? Date.now();
  }

  /**
   * Trades a refresh token for new tokens, as the spec has it: the refresh token stays good until
   * the new access or refresh token is first used (a client whose answer was lost can ask again;
   * only the newest answer stays good), then it is revoked. The device's other access tokens keep
   * working until they expire or the device goes.
   */
  refresh(refreshToken: string): Session {
    const session = this.tx(() => {
      const row = this.accounts.useRefreshToken(refreshToken);
      return row ? this.issueTokens(row.user_id, row.device_id, true, refreshToken) : undefined;
    });
    if (!session)
      throw new MatrixError(401, "M_UNKNOWN_TOKEN", "Unknown refresh token", { soft_logout: false });
    return session;
  }

  /** Deletes a device with its tokens, keys and to-device queue, and tells everyone who shares a room. */
  deleteDevice(userId: string, deviceId: string): void {
    this.forgetCachedTokens(userId, deviceId);
    this.toDeviceAcked.delete(`${userId}|${deviceId}`);
    this.tx(() => {
      this.accounts.deleteDevice(userId, deviceId);
      this.keys.deleteDeviceKeys(userId, deviceId);
    });
    this.deviceListChanged(userId);
  }

  /**
   * Drops to-device messages up to `upTo` for a device. Remembers how far each device acknowledged,
   * so that the common case (nothing new acknowledged) costs no write.
   */
  ackToDevice(userId: string, deviceId: string, upTo: number): void {
    const key = `${userId}|${deviceId}`;
    if ((this.toDeviceAcked.get(key) ?? -1) >= upTo) return;
    this.keys.ackToDevice(userId, deviceId, upTo);
    this.toDeviceAcked.set(key, upTo);
  }

  /** Records a change to `userId`'s devices or keys and wakes every user who shares a room with them. */
  deviceListChanged(userId: string): void {
    this.tx(() => this.keys.addDeviceListChange(this.stream.next(), userId));
    const users = this.rooms.usersSharingRoomWith(userId);
    users.add(userId);
    this.notifier.notify(users);
  }

  /**
   * `signer` signed `target`'s master key with their user-signing key: a signature only the signer
   * sees, so only the signer's devices are told (as Synapse does), not everyone sharing a room.
   */
  userSignatureChanged(signer: string, target: string): void {
    this.tx(() => this.keys.addDeviceListChange(this.stream.next(), target, signer));
    this.notifier.notify([signer]);
  }

  /** Everyone who should hear about activity in a room: joined and invited members. */
  roomAudience(roomId: string): string[] {
    return this.rooms
      .members(roomId)
      .filter((m) => m.membership === "join" || m.membership === "invite")
      .map((m) => m.user_id);
  }

  notifyRoom(roomId: string, extra: string[] = []): void {
    this.notifier.notify([...this.roomAudience(roomId), ...extra]);
  }

  /**
   * Appends an event to a room (authorisation is the caller's job) and wakes the room's audience.
   * State events carry `unsigned.prev_content`/`replaces_state` of the event they replace.
   */
  appendEvent(
    roomId: string,
    sender: string,
    type: string,
    content: JsonObject,
    opts: AppendOptions = {},
  ): StreamEvent {
    const written = this.tx(() => {
      const pos = this.stream.next();
      const ts = Date.now();
      const ev: RoomEvent = {
        event_id: "",
        room_id: roomId,
        sender,
        type,
        content,
        origin_server_ts: ts,
        ...(opts.extra ?? {}),
      };
      if (opts.stateKey !== undefined) {
        ev.state_key = opts.stateKey;
        const prev = this.rooms.stateEvent(roomId, type, opts.stateKey);
        if (prev)
          ev.unsigned = {
            replaces_state: prev.event_id,
            prev_content: prev.content,
            prev_sender: prev.sender,
          };
      }
      ev.event_id = computeEventId({
        room_id: roomId,
        sender,
        type,
        state_key: opts.stateKey,
        content,
        origin_server_ts: ts,
        depth: pos,
        origin: this.serverName,
      });
      this.rooms.insertEvent(pos, ev, opts.txn?.deviceId ?? null, opts.txn?.txnId ?? null);
      return { pos, event: ev, txnDevice: opts.txn?.deviceId ?? null, txnId: opts.txn?.txnId ?? null };
    });
    const extra = type === "m.room.member" && opts.stateKey !== undefined ? [opts.stateKey] : [];
    this.notifyRoom(roomId, extra);
    return written;
  }
}
