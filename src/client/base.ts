// The client core: HTTP, session (login, restore, logout), account data and the sync loop.
// `MatrixClient` (client.ts) adds rooms, sending and media on top.

import { platform } from "#client-platform";
import {
  type BasicEvent,
  type ClientEvent,
  emptyResponseSchema,
  type JsonObject,
  type LoginRequest,
  type LoginResponse,
  loginResponseSchema,
  type MessagesResponse,
  messagesResponseSchema,
  type RegisterRequest,
  registerResponseSchema,
  type SyncResponse,
  uiaResponseSchema,
  type WhoamiResponse,
  whoamiResponseSchema,
} from "../wire/index.ts";
import type * as z from "../wire/zod.ts";
import { type BackoffPolicy, withRetry } from "./backoff.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { EncryptionOptions } from "./crypto/options.ts";
import { ClientError, MatrixError, NetworkError } from "./errors.ts";
import { TypedEmitter } from "./events/emitter.ts";
import type { ClientEventMap, SyncState } from "./events/types.ts";
import { type FetchLike, HttpClient, normalizeBaseUrl, path, type RequestOptions } from "./http.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { MediaApi } from "./media.ts";
import { Room } from "./rooms/room.ts";
import { SendQueue } from "./rooms/send-queue.ts";
import type { ClientStore, StoredSession } from "./store/index.ts";
import type { EventEncryptor, SyncProcessor } from "./sync/hooks.ts";
import { SyncLoop } from "./sync/loop.ts";

/** Retries for one-shot API calls: only rate limits (the request was not processed). */
/** Most events fetched to fill one room's timeline gap in one sync response. */
export const MAX_GAP_FILL_EVENTS = 1000;
const GAP_PAGE_SIZE = 100;
const CALL_RETRY: BackoffPolicy = Object.freeze({ baseMs: 500, maxMs: 10_000, maxAttempts: 4 });

export interface MatrixClientOptions {
  /** Base URL of the homeserver (use `MatrixClient.discover` for a user ID or server name). */
  homeserverUrl: string;
  /**
   * Session, sync position and room state. Default: in memory on Node, IndexedDB
   * (`keyroom-session`) in browsers, so a reload keeps the session.
   */
  store?: ClientStore;
  fetch?: FetchLike;
  logger?: Logger;
  clock?: Clock;
  /** Filter for `/sync`: a filter ID or a filter object (sent inline). */
  syncFilter?: string | JsonObject;
  /** Server-side long-poll wait per `/sync` request. */
  syncTimeoutMs?: number;
  syncBackoff?: BackoffPolicy;
  sendBackoff?: BackoffPolicy;
  syncProcessor?: SyncProcessor;
  eventEncryptor?: EventEncryptor;
  /**
   * When a sync timeline is `limited` (more events than it carries, e.g. after downtime), fetch
   * the missing events through `/messages` so none is lost. Default true; at most
   * `MAX_GAP_FILL_EVENTS` per room and response.
   */
  fillTimelineGaps?: boolean;
  /**
   * End-to-end encryption: `true` for the defaults (SQLite store on Node, IndexedDB in
   * browsers), or options (store
   * location or instance, passphrase, `restoreDeviceId`, `verifyDevices`). See docs/e2ee.md.
   */
  encryption?: true | EncryptionOptions;
  /**
   * The session's access token is an application service's `as_token`: every request acts as the
   * session's user and device (identity assertion with device masquerading, MSC3202/MSC4326), and
   * sync data comes from the appservice's transactions through `feedSync`. `keyroom/appservice`
   * sets this up for its virtual users.
   */
  appserviceUser?: boolean;
}

export interface PasswordLogin {
  /** Full user ID (`@alice:example.org`) or localpart (`alice`). */
  user: string;
  password: string;
  /** Reuse a device; by default the stored session's device when it is the same user. */
  deviceId?: string;
  deviceDisplayName?: string;
}

/** Session info without the token. */
export interface SessionInfo {
  userId: string;
  deviceId: string;
  homeserverUrl: string;
}

/** The session and sync half of `MatrixClient`; use `MatrixClient`. */
export abstract class ClientBase extends TypedEmitter<ClientEventMap> {
  readonly http: HttpClient;
  readonly store: ClientStore;
  readonly media: MediaApi;
  protected readonly logger: Logger;
  protected readonly clock: Clock;
  protected readonly opts: MatrixClientOptions;
  protected session: StoredSession | undefined;
  protected readonly rooms = new Map<string, Room>();
  protected readonly accountData = new Map<string, BasicEvent>();
  private syncLoop: SyncLoop | undefined;
  protected readonly sendQueue: SendQueue;
  protected syncProcessor: SyncProcessor | undefined;
  protected eventEncryptor: EventEncryptor | undefined;

  constructor(opts: MatrixClientOptions) {
    super(opts.logger ?? silentLogger);
    this.opts = opts;
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.store = opts.store ?? platform.defaultClientStore();
    this.syncProcessor = opts.syncProcessor;
    this.eventEncryptor = opts.eventEncryptor;
    this.http = new HttpClient({
      baseUrl: opts.homeserverUrl,
      logger: this.logger,
      accessToken: () => this.session?.accessToken,
      ...(opts.appserviceUser
        ? {
            assertedIdentity: () =>
              this.session ? { userId: this.session.userId, deviceId: this.session.deviceId } : undefined,
          }
        : {}),
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
    this.media = new MediaApi(this.http);
    this.sendQueue = new SendQueue({
      http: this.http,
      clock: this.clock,
      logger: this.logger,
      ...(opts.sendBackoff ? { policy: opts.sendBackoff } : {}),
      prepare: (roomId, type, content) => this.prepareOutgoing(roomId, type, content),
    });
  }

  // ---- session ----

  get homeserverUrl(): string {
    return this.http.baseUrl;
  }
  get isLoggedIn(): boolean {
    return this.session !== undefined;
  }
  get userId(): string {
    return this.requireSession().userId;
  }
  get deviceId(): string {
    return this.requireSession().deviceId;
  }
  /** The session without its access token. */
  get sessionInfo(): SessionInfo | undefined {
    const s = this.session;
    return s ? { userId: s.userId, deviceId: s.deviceId, homeserverUrl: s.homeserverUrl } : undefined;
  }

  protected requireSession(): StoredSession {
    if (!this.session) throw new ClientError("NOT_LOGGED_IN", "log in or restore a session first");
    return this.session;
  }

  /** Password login. Logging in again as the stored user reuses the stored device. */
  async login(opts: PasswordLogin): Promise<SessionInfo> {
    const stored = await this.store.loadSession();
    const sameUser =
      stored && stored.homeserverUrl === this.homeserverUrl && sameUserId(stored.userId, opts.user);
    const deviceId = opts.deviceId ?? (sameUser ? stored.deviceId : undefined);
    const body: LoginRequest = {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: opts.user },
      password: opts.password,
      ...(deviceId ? { device_id: deviceId } : {}),
      ...(opts.deviceDisplayName ? { initial_device_display_name: opts.deviceDisplayName } : {}),
    };
    return this.completeLogin(
      await this.call({
        method: "POST",
        path: path`/_matrix/client/v3/login`,
        body,
        auth: false,
        schema: loginResponseSchema,
      }),
    );
  }

  /** Login with an `m.login.token` (e.g. from SSO). */
  async loginWithToken(
    token: string,
    opts: { deviceId?: string; deviceDisplayName?: string } = {},
  ): Promise<SessionInfo> {
    const body: LoginRequest = {
      type: "m.login.token",
      token,
      ...(opts.deviceId ? { device_id: opts.deviceId } : {}),
      ...(opts.deviceDisplayName ? { initial_device_display_name: opts.deviceDisplayName } : {}),
    };
    return this.completeLogin(
      await this.call({
        method: "POST",
        path: path`/_matrix/client/v3/login`,
        body,
        auth: false,
        schema: loginResponseSchema,
      }),
    );
  }

  /**
   * Registers an account (servers with open registration, completing the `m.login.dummy` stage) and
   * logs it in.
   */
  async register(opts: {
    username: string;
    password: string;
    deviceId?: string;
    deviceDisplayName?: string;
  }) {
    const body: RegisterRequest = {
      username: opts.username,
      password: opts.password,
      ...(opts.deviceId ? { device_id: opts.deviceId } : {}),
      ...(opts.deviceDisplayName ? { initial_device_display_name: opts.deviceDisplayName } : {}),
    };
    const req = (b: RegisterRequest) =>
      this.call({
        method: "POST",
        path: path`/_matrix/client/v3/register`,
        body: b,
        auth: false,
        schema: registerResponseSchema,
      });
    let res: z.output<typeof registerResponseSchema>;
    try {
      res = await req(body);
    } catch (err) {
      const uia =
        err instanceof MatrixError && err.httpStatus === 401
          ? uiaResponseSchema.safeParse(err.body)
          : undefined;
      if (!uia?.success) throw err;
      const dummyOnly = uia.data.flows.some((f) => f.stages.length === 1 && f.stages[0] === "m.login.dummy");
      if (!dummyOnly)
        throw new ClientError(
          "UNSUPPORTED_AUTH",
          "registration requires interactive auth stages this client cannot complete",
        );
      res = await req({
        ...body,
        auth: { type: "m.login.dummy", ...(uia.data.session ? { session: uia.data.session } : {}) },
      });
    }
    if (!res.access_token || !res.device_id) {
      throw new ClientError("UNSUPPORTED_AUTH", "the server registered the account without logging it in");
    }
    return this.completeLogin({
      user_id: res.user_id,
      access_token: res.access_token,
      device_id: res.device_id,
    });
  }

  private async completeLogin(res: LoginResponse): Promise<SessionInfo> {
    const stored = await this.store.loadSession();
    // Another account or device invalidates the cached sync state of the old one.
    if (stored && (stored.userId !== res.user_id || stored.deviceId !== res.device_id))
      await this.store.clear();
    const session: StoredSession = {
      homeserverUrl: this.homeserverUrl,
      userId: res.user_id,
      deviceId: res.device_id,
      accessToken: res.access_token,
    };
    await this.store.saveSession(session);
    await this.restore(session);
    this.logger.info({ userId: session.userId, deviceId: session.deviceId }, "logged in");
    return this.sessionInfo!;
  }

  /** Resumes a saved session (from the argument or the store) with its cached rooms and sync token. */
  async restore(session?: StoredSession): Promise<SessionInfo> {
    const s = session ?? (await this.store.loadSession());
    if (!s) throw new ClientError("NOT_LOGGED_IN", "no session to restore");
    await this.stopSync();
    // The token must only ever go to the server that issued it.
    if (normalizeBaseUrl(s.homeserverUrl) !== this.homeserverUrl) {
      throw new ClientError("INVALID_ARGUMENT", "the session belongs to another homeserver");
    }
    if (session) {
      const stored = await this.store.loadSession();
      if (stored && (stored.userId !== s.userId || stored.deviceId !== s.deviceId)) await this.store.clear();
      await this.store.saveSession(s);
    }
    this.session = { ...s };
    this.rooms.clear();
    this.accountData.clear();
    const sync = await this.store.loadSync();
    for (const snap of sync?.rooms ?? []) this.rooms.set(snap.roomId, Room.fromSnapshot(snap));
    for (const ev of sync?.accountData ?? []) this.accountData.set(ev.type, ev);
    this.syncLoop = this.makeSyncLoop(sync?.nextBatch);
    return this.sessionInfo!;
  }

  async whoami(): Promise<WhoamiResponse> {
    this.requireSession();
    return this.call(
      { method: "GET", path: path`/_matrix/client/v3/account/whoami`, schema: whoamiResponseSchema },
      true,
    );
  }

  /**
   * Invalidates the access token and deletes the device server-side (its encryption keys with it),
   * then forgets the session locally. To stop a bot, call `close()` instead: logging out on every
   * shutdown makes each start a new device that others cannot yet encrypt to.
   */
  async logout(): Promise<void> {
    this.requireSession();
    await this.stopSync();
    await this.sendQueue.drain();
    try {
      await this.call({
        method: "POST",
        path: path`/_matrix/client/v3/logout`,
        body: {},
        schema: emptyResponseSchema,
      });
    } catch (err) {
      // A token the server no longer knows is as logged out as it gets.
      if (!(err instanceof MatrixError && err.errcode === "M_UNKNOWN_TOKEN")) throw err;
    }
    await this.forgetSession();
  }

  private async forgetSession(): Promise<void> {
    this.session = undefined;
    this.syncLoop = undefined;
    this.rooms.clear();
    this.accountData.clear();
    await this.store.clear();
  }

  /** Stops syncing, waits for queued sends and closes the store. */
  async close(): Promise<void> {
    await this.stopSync();
    await this.sendQueue.drain();
    await this.store.close?.();
  }

  // ---- E2EE hooks ----

  setSyncProcessor(p: SyncProcessor | undefined): void {
    this.syncProcessor = p;
  }
  setEventEncryptor(e: EventEncryptor | undefined): void {
    this.eventEncryptor = e;
  }

  // ---- sync ----

  private makeSyncLoop(since: string | undefined): SyncLoop {
    const f = this.opts.syncFilter;
    return new SyncLoop({
      http: this.http,
      clock: this.clock,
      since,
      ...(f !== undefined ? { filter: typeof f === "string" ? f : JSON.stringify(f) } : {}),
      ...(this.opts.syncTimeoutMs !== undefined ? { timeoutMs: this.opts.syncTimeoutMs } : {}),
      ...(this.opts.syncBackoff ? { backoff: this.opts.syncBackoff } : {}),
      context: {
        userId: this.requireSession().userId,
        rooms: this.rooms,
        accountData: this.accountData,
        emitter: this,
        store: this.store,
        logger: this.logger,
        processor: () => this.syncProcessor,
        ...(this.opts.fillTimelineGaps !== false
          ? { fetchGap: (roomId, from, to) => this.fetchGap(roomId, from, to) }
          : {}),
      },
      onSessionRevoked: async (softLogout) => {
        // A soft logout keeps the device (and its keys): only the token is gone.
        if (!softLogout) await this.forgetSession();
        else this.session = undefined;
        await this.emit("session.loggedOut", { softLogout });
      },
    });
  }

  private requireSyncLoop(): SyncLoop {
    this.requireSession();
    if (!this.syncLoop) throw new ClientError("NOT_LOGGED_IN", "log in or restore a session first");
    return this.syncLoop;
  }

  /**
   * Starts the sync loop; resolves after the first response was processed. An appservice user
   * (`appserviceUser`) has no loop: its sync data comes from transactions through `feedSync`, so
   * this only checks the session (and code written for ordinary clients, such as a bot, runs on it).
   */
  startSync(): Promise<void> {
    const loop = this.requireSyncLoop();
    if (this.opts.appserviceUser) return Promise.resolve();
    return loop.start();
  }

  /** True when sync data comes from an appservice's transactions rather than `/sync`. */
  get isAppserviceUser(): boolean {
    return this.opts.appserviceUser === true;
  }

  /** Stops the sync loop (the in-flight long-poll is aborted; nothing half-processed is saved). */
  async stopSync(): Promise<void> {
    await this.syncLoop?.stop();
  }

  /**
   * Handles a sync response that came from elsewhere than `/sync`: an application service builds
   * one per virtual user from each transaction. It goes through the same steps as a synced one
   * (E2EE first, state, events, then the token saved), in turn with any other. Not while the sync
   * loop runs: the two would interleave positions.
   */
  async feedSync(res: SyncResponse): Promise<void> {
    const loop = this.requireSyncLoop();
    if (loop.isRunning)
      throw new ClientError("INVALID_ARGUMENT", "feedSync cannot run while the sync loop runs");
    await loop.feed(res);
  }

  /** One sync request and its handling, outside the loop (scripts, tests). */
  async syncOnce(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const loop = this.requireSyncLoop();
    if (loop.isRunning)
      throw new ClientError("INVALID_ARGUMENT", "syncOnce cannot run while the sync loop runs");
    await loop.syncOnce(opts);
  }

  get syncState(): SyncState {
    return this.syncLoop?.syncState ?? "stopped";
  }
  get nextBatch(): string | undefined {
    return this.syncLoop?.nextBatch;
  }

  /** The events between sync token `to` and pagination token `from`, oldest first (bounded). */
  private async fetchGap(roomId: string, from: string, to: string): Promise<ClientEvent[]> {
    const out: ClientEvent[] = [];
    let cursor: string | undefined = from;
    while (cursor !== undefined && out.length < MAX_GAP_FILL_EVENTS) {
      const res: MessagesResponse = await this.call(
        {
          method: "GET",
          path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
          query: {
            dir: "b",
            from: cursor,
            to,
            limit: Math.min(GAP_PAGE_SIZE, MAX_GAP_FILL_EVENTS - out.length),
          },
          schema: messagesResponseSchema,
        },
        true,
      );
      out.push(...res.chunk);
      cursor = res.chunk.length > 0 ? res.end : undefined;
    }
    if (cursor !== undefined)
      this.logger.warn({ roomId, fetched: out.length }, "timeline gap larger than the fill limit");
    return out.reverse();
  }

  /** Turns an outgoing room event into what goes on the wire (encryption in encrypted rooms). */
  protected abstract prepareOutgoing(
    roomId: string,
    type: string,
    content: JsonObject,
  ): Promise<{ type: string; content: JsonObject }>;

  // ---- plumbing ----

  /**
   * One API call. Rate limits are retried (the server did not act on the request); `idempotent`
   * requests are also retried on network errors and 5xx.
   */
  protected call<S extends z.ZodMiniType>(req: RequestOptions<S>, idempotent = false): Promise<z.output<S>> {
    return withRetry(() => this.http.request(req), {
      policy: CALL_RETRY,
      clock: this.clock,
      shouldRetry: (err) =>
        err instanceof MatrixError
          ? err.isRateLimited || (idempotent && err.httpStatus >= 500)
          : idempotent && err instanceof NetworkError && err.code !== "ABORTED",
      onRetry: (err, attempt, delayMs) =>
        this.logger.debug(
          {
            endpoint: req.path.template,
            attempt,
            delayMs,
            errcode: err instanceof MatrixError ? err.errcode : undefined,
          },
          "retrying",
        ),
    });
  }

  toJSON(): Record<string, unknown> {
    return { type: "MatrixClient", homeserverUrl: this.homeserverUrl, ...this.sessionInfo };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    const s = this.sessionInfo;
    return `MatrixClient(${this.homeserverUrl}${s ? `, ${s.userId}/${s.deviceId}` : ", logged out"})`;
  }
}

/** Whether `given` (user ID or localpart) names the stored `userId`. */
function sameUserId(userId: string, given: string): boolean {
  return given.startsWith("@") ? given === userId : userId.startsWith(`@${given}:`);
}
