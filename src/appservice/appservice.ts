// An application service: its own user and any number of virtual users of its namespaces, each a
// full `MatrixClient` (end-to-end encryption included) that acts through the appservice's
// `as_token` with identity assertion and device masquerading, and whose sync data comes from the
// homeserver's transactions (MSC2409/MSC4203 to-device, MSC3202 device lists and key counts)
// instead of `/sync`. See docs/bots.md, "Appservice mode".
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import {
  type ClientStore,
  type CryptoStoreOption,
  type EncryptionOptions,
  type FetchLike,
  HttpClient,
  type Logger,
  MatrixClient,
  type MatrixClientOptions,
  MatrixError,
  MemoryClientStore,
  path,
  SqliteClientStore,
  silentLogger,
} from "../index.ts";
import { MemoryCryptoStore } from "../store/memory/memory-store.ts";
import { appservicePingResponseSchema, Namespaces, type Registration } from "../wire/appservice.ts";
import {
  emptyResponseSchema,
  jsonObjectSchema,
  keysQueryResponseSchema,
  keysUploadResponseSchema,
  syncResponseSchema,
  whoamiResponseSchema,
} from "../wire/index.ts";
import { catchUp } from "./catch-up.ts";
import { AppserviceError } from "./errors.ts";
import { HeldToDeviceStore } from "./held-to-device.ts";
import { HeldTransactions } from "./held-transactions.ts";
import { ensureDevice, newDeviceId, registerUser } from "./provision.ts";
import { SeenTransactions } from "./seen-transactions.ts";
import { type AppserviceListener, listenAppservice } from "./server.ts";
import { feedBeforeReturn, type HandoverHost, type HandoverTxn, handAfterReturn } from "./start-handover.ts";
import { anyHeld, StartingUsers } from "./starting-users.ts";
import type { Transaction } from "./transaction.ts";
import { CLIENT_STORE_FILE, virtualUserPaths } from "./user-paths.ts";
import { type KnownKeyCounts, userSyncFor } from "./user-sync.ts";

export { virtualUserPaths } from "./user-paths.ts";

/** Transaction IDs each virtual user remembers having been fed (a retried transaction skips them). */
export const MAX_FED_TXNS_PER_USER = 100;
/**
 * Attempts at one transaction for one virtual user. After that it is skipped for that user (and
 * reported through `onError`), so one broken user (a closed or failing store) cannot hold up the
 * others forever.
 */
export const MAX_FEED_ATTEMPTS = 3;

/** Client options a virtual user's client takes (the rest the appservice sets). */
export type VirtualUserClientOptions = Omit<
  MatrixClientOptions,
  "homeserverUrl" | "store" | "encryption" | "appserviceUser" | "fetch" | "logger"
>;

export interface AppserviceOptions {
  registration: Registration;
  homeserverUrl: string;
  /**
   * Where virtual users keep their state: `<dataDir>/<user>/` holds the client store (session,
   * device ID, rooms) and the crypto store (SQLite), so a restart reuses the same devices and keys.
   * Without it everything is in memory (tests, throwaway runs): every start makes new devices.
   */
  dataDir?: string;
  /**
   * End-to-end encryption of virtual users: `true` (default), `false` for none, or options for
   * every user (trust requirements, store passphrase; the store location follows `dataDir`).
   */
  encryption?: boolean | Omit<EncryptionOptions, "store">;
  clientOptions?: VirtualUserClientOptions;
  logger?: Logger;
  fetch?: FetchLike;
  /** Called with every transaction after the virtual users had their share (e.g. to start a user an invite names). */
  onTransaction?: (txn: Transaction, txnId: string) => void | Promise<void>;
  /** `GET /users/{userId}` from the homeserver: create the user and say true, or false. */
  queryUser?: (userId: string) => Promise<boolean>;
  queryAlias?: (alias: string) => Promise<boolean>;
  /** A virtual user's share of a transaction was given up after `MAX_FEED_ATTEMPTS` failures. */
  onError?: (error: unknown, userId: string, txnId: string) => void;
  /**
   * The homeserver called the listener's `/_matrix/app/v1/ping` (it does when asked by a
   * `pingHomeserver`, this appservice's or another process's with the same registration), with
   * the ping's transaction ID if it had one.
   */
  onPing?: (transactionId: string | undefined) => void;
}

/** What `pingHomeserver` learnt. */
export interface PingResult {
  /** How long the homeserver's call to the appservice's `/ping` took, from the homeserver's side. */
  durationMs: number;
  /** The ping's transaction ID (the one given, or a fresh one). */
  transactionId: string;
  /**
   * Whether this appservice's listener received the homeserver's call carrying that transaction
   * ID: false when the endpoint is served elsewhere (no `listen()` here) or the registration's
   * `url` reaches another process (an old instance still running, another program on the port).
   */
  relayed: boolean;
}

/** Where the transactions endpoint listens. */
export interface ListenOptions {
  readonly port: number;
  readonly host?: string;
  /**
   * Hold mode, for a tool that runs while the app is stopped (`keyroom bot verify`): each
   * transaction is handled at once by the users' clients (a verification needs its to-device and
   * in-room events), and its room part (timeline and ephemeral events) is also kept on disk for the
   * app's next `listen()`, which hands it to the app's handlers first. Needs `dataDir`.
   */
  readonly holdRoomEvents?: boolean;
}

interface VirtualUser {
  readonly client: MatrixClient;
  readonly known: KnownKeyCounts;
  /** Transactions this user's client handled (bounded, oldest dropped first). */
  readonly fed: Set<string>;
  /** Failed attempts at the transaction being handled. */
  failed?: { txnId: string; count: number };
}

/** What a user's start has opened so far, to close if it fails. */
interface Made {
  store?: ClientStore;
  client?: MatrixClient;
}

/** An error's name, for the log (never its message: it may quote what the server sent). */
const errorName = (e: unknown): string => (e instanceof Error ? e.name : "error");

/** Separates a fed sync token from the transaction ID it names. */
const TXN_MARK = "_txn_";

/** The transaction a sync token of ours was made for, if it names one. */
export function txnOfToken(token: string | undefined): string | undefined {
  if (token === undefined || !token.startsWith("appservice_")) return undefined;
  const at = token.indexOf(TXN_MARK);
  if (at < 0) return undefined;
  try {
    return decodeURIComponent(token.slice(at + TXN_MARK.length));
  } catch {
    return undefined;
  }
}

export class Appservice {
  readonly registration: Registration;
  readonly namespaces: Namespaces;
  readonly #opts: AppserviceOptions;
  readonly #http: HttpClient;
  readonly #logger: Logger;
  readonly #users = new Map<string, Promise<VirtualUser>>();
  readonly #started = new Map<string, VirtualUser>();
  /** What comes for users whose start is under way (starting-users.ts). */
  readonly #starting = new StartingUsers();
  readonly #seen = new SeenTransactions();
  /** Room parts of transactions taken in hold mode (with `dataDir`). */
  readonly #held: HeldTransactions | undefined;
  /** To-device messages held for starting users, on disk until handed over (with `dataDir`). */
  readonly #heldToDevice: HeldToDeviceStore | undefined;
  /** Handovers of users started by `start()`: run before the first transaction is handled. */
  readonly #deferredHandovers: (() => Promise<void>)[] = [];
  /** Users' shares of transactions and users' catch-ups run one at a time, in order. */
  #chain: Promise<void> = Promise.resolve();
  /**
   * Whole transactions (users' shares, then `onTransaction`) run one at a time, in order. Apart
   * from `#chain` so that `onTransaction` can start a user (whose set-up takes `#chain`).
   */
  #txnChain: Promise<void> = Promise.resolve();
  #listener: AppserviceListener | undefined;
  /** `listen()` was called (and has not failed): a second call is refused at once. */
  #listening = false;
  #senderUserId: string | undefined;
  /** Transaction IDs of this appservice's pings under way → whether the listener received them. */
  readonly #pings = new Map<string, boolean>();
  #feeds = 0;
  /** `start()` finished: the users of `dataDir` are back, transactions may be handled. */
  #ready = false;
  #closed = false;

  constructor(opts: AppserviceOptions) {
    this.registration = opts.registration;
    this.namespaces = new Namespaces(opts.registration);
    this.#opts = opts;
    this.#held = opts.dataDir !== undefined ? new HeldTransactions(opts.dataDir) : undefined;
    this.#logger = opts.logger ?? silentLogger;
    this.#heldToDevice =
      opts.dataDir !== undefined ? new HeldToDeviceStore(opts.dataDir, this.#logger) : undefined;
    this.#http = new HttpClient({
      baseUrl: opts.homeserverUrl,
      logger: this.#logger,
      accessToken: () => opts.registration.as_token,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
  }

  /** The appservice's own user (`@sender_localpart:server`); known after `start()`. */
  get senderUserId(): string {
    if (this.#senderUserId === undefined) throw new AppserviceError("NOT_STARTED", "call start() first");
    return this.#senderUserId;
  }

  get serverName(): string {
    return this.senderUserId.slice(this.senderUserId.indexOf(":") + 1);
  }

  /**
   * Asks the homeserver who the appservice is (checks the `as_token`) and brings back every virtual
   * user `dataDir` holds. With `listen`, then starts the transactions endpoint (see `listen`) and
   * returns its URL.
   */
  async start(listen?: ListenOptions): Promise<string | undefined> {
    const me = await this.#http.request({
      method: "GET",
      path: path`/_matrix/client/v3/account/whoami`,
      schema: whoamiResponseSchema,
    });
    this.#senderUserId = me.user_id;
    await this.#restoreKnownUsers();
    this.#ready = true;
    return listen === undefined ? undefined : this.listen(listen);
  }

  /**
   * Starts the transactions endpoint (after `start()`). Call it once the handlers of the users
   * `start()` brought back are on their clients: the room events held by a tool while the app was
   * stopped are handled first, then the transactions the homeserver kept arrive as soon as it
   * listens; an event fed to a client before its handler is there is not handled. Returns the
   * endpoint's URL.
   */
  async listen(listen: ListenOptions): Promise<string> {
    if (this.#closed) throw new AppserviceError("CLOSED", "the appservice is closed");
    if (!this.#ready) throw new AppserviceError("NOT_STARTED", "call start() first");
    if (this.#listening) throw new AppserviceError("LISTENING", "the appservice listens already");
    const hold = listen.holdRoomEvents === true;
    if (hold && this.#held === undefined) {
      throw new AppserviceError("NO_DATA_DIR", "holding room events needs the appservice's dataDir");
    }
    this.#listening = true;
    try {
      if (!hold) await this.#handleHeld();
      this.#listener = await this.#startListener(listen, hold);
    } catch (e) {
      this.#listening = false;
      throw e;
    }
    if (this.#closed) {
      // Closed while the listener started: close() could not see it.
      await this.#listener.close();
      throw new AppserviceError("CLOSED", "the appservice is closed");
    }
    return this.#listener.url;
  }

  #startListener(listen: ListenOptions, hold: boolean): Promise<AppserviceListener> {
    return listenAppservice(
      {
        port: listen.port,
        hsToken: this.registration.hs_token,
        logger: this.#logger,
        ...(listen.host ? { host: listen.host } : {}),
      },
      {
        transaction: (txnId, txn) =>
          (hold ? this.#holdTransaction(txnId, txn) : this.handleTransaction(txnId, txn)).then(
            () => undefined,
          ),
        ...(this.#opts.queryUser ? { queryUser: this.#opts.queryUser } : {}),
        ...(this.#opts.queryAlias ? { queryAlias: this.#opts.queryAlias } : {}),
        ping: (transactionId) => {
          if (transactionId !== undefined && this.#pings.has(transactionId))
            this.#pings.set(transactionId, true);
          this.#opts.onPing?.(transactionId);
        },
      },
    );
  }

  /**
   * Hold mode's handling: the room part is on disk before the transaction is handled, and both
   * before it is acknowledged. So a crash at any point loses nothing: the homeserver sends the
   * transaction again (to the tool or to the app), or the app finds the room part held. (A crash
   * between the two can give the app an event twice, which a bot's handled-event marks absorb.)
   */
  #holdTransaction(txnId: string, txn: Transaction): Promise<boolean> {
    const held = this.#held;
    if (this.#closed || held === undefined) {
      return Promise.reject(new AppserviceError("CLOSED", "the appservice is closed"));
    }
    return this.#seen.once(txnId, () =>
      this.#inOrder(async () => {
        await this.#serially(() => this.#holdAndDispatch(held, txnId, txn));
        await this.#opts.onTransaction?.(txn, txnId);
        held.handled(txnId);
      }),
    );
  }

  /** The room part on disk (once), then the users' shares. */
  async #holdAndDispatch(held: HeldTransactions, txnId: string, txn: Transaction): Promise<void> {
    if (!held.isHeld(txnId)) {
      const hasRoomPart = txn.events.length > 0 || txn.ephemeral.length > 0;
      if (hasRoomPart && !(await held.hasRoom())) {
        throw new AppserviceError("HOLD_FULL", "too many transactions held; the homeserver keeps this one");
      }
      await held.holdOnce(txnId, txn);
    }
    await this.#dispatch(txnId, txn);
  }

  /** The room parts a tool held while the app was stopped, in order, each released once handled. */
  async #handleHeld(): Promise<void> {
    const held = this.#held;
    if (held === undefined) return;
    const parts = await held.list((name) =>
      this.#logger.error({ name }, "a held transaction could not be read; set aside as .bad"),
    );
    for (const { name, txn } of parts) {
      // #dispatch gives a failing user up after MAX_FEED_ATTEMPTS, so this ends.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#serially(() => this.#dispatch(`held:${name}`, txn));
          await this.#opts.onTransaction?.(txn, `held:${name}`);
          break;
        } catch (e) {
          if (attempt >= MAX_FEED_ATTEMPTS) throw e;
        }
      }
      await held.release(name);
    }
    if (parts.length > 0) this.#logger.info({ count: parts.length }, "held transactions handled");
  }

  /** The virtual users started (or being started), by user ID. */
  get userIds(): string[] {
    return [...this.#users.keys()];
  }

  /** Starts every user whose client store is in `dataDir`. */
  async #restoreKnownUsers(): Promise<void> {
    const dataDir = this.#opts.dataDir;
    if (dataDir === undefined || !existsSync(dataDir)) return;
    for (const name of (await readdir(dataDir)).sort()) {
      const file = join(dataDir, name, CLIENT_STORE_FILE);
      if (!existsSync(file)) continue;
      const store = await SqliteClientStore.open(file);
      const session = await store.loadSession();
      if (session === undefined || !this.controls(session.userId) || this.#users.has(session.userId)) {
        await store.close();
        continue;
      }
      // Its directory as found (one an earlier version named otherwise is kept).
      await this.#track(session.userId, this.#setUp(session.userId, {}, { store, dir: join(dataDir, name) }));
    }
  }

  #track(userId: string, setUp: Promise<VirtualUser>): Promise<VirtualUser> {
    this.#users.set(userId, setUp);
    // A failed set-up (which left nothing behind, see #startFailed) can be tried again.
    setUp.catch(() => {
      if (this.#users.get(userId) === setUp) this.#users.delete(userId);
    });
    return setUp;
  }

  /** Whether the appservice may act as `userId`: its own user or one of its user namespaces on this server. */
  controls(userId: string): boolean {
    const server = this.serverName;
    return (
      userId === this.senderUserId || (userId.endsWith(`:${server}`) && this.namespaces.matchesUser(userId))
    );
  }

  /**
   * A virtual user's client, started: the user registered (`m.login.application_service`) if new,
   * its device created (MSC4190, else an appservice login), the client restored on it with the
   * `as_token` and device masquerading, encryption running, and the rooms it is in loaded. Do not
   * call `startSync()` on it: its sync data comes from transactions.
   */
  user(
    localpartOrUserId: string,
    opts: { deviceId?: string; displayName?: string } = {},
  ): Promise<MatrixClient> {
    if (this.#closed) return Promise.reject(new AppserviceError("CLOSED", "the appservice is closed"));
    const userId = localpartOrUserId.startsWith("@")
      ? localpartOrUserId
      : `@${localpartOrUserId}:${this.serverName}`;
    if (!this.controls(userId)) {
      return Promise.reject(
        new AppserviceError("NOT_IN_NAMESPACE", `${userId} is not in the appservice's namespaces`),
      );
    }
    const vu = this.#users.get(userId) ?? this.#track(userId, this.#setUp(userId, opts));
    return vu.then((v) => v.client);
  }

  async #setUp(
    userId: string,
    opts: { deviceId?: string; displayName?: string },
    opened?: { store: ClientStore; dir: string },
  ): Promise<VirtualUser> {
    // From here its device may get keys on the server: what comes for it is held.
    this.#starting.begin(userId);
    const made: Made = opened === undefined ? {} : { store: opened.store };
    try {
      return await this.#startUser(userId, opts, opened?.dir, made);
    } catch (e) {
      await this.#startFailed(userId, made, e);
      throw e;
    }
  }

  /**
   * A failed start leaves nothing behind before `user()` fails (so a call after that starts the
   * user afresh, on its store): its client closed (its stores with it), or its store if there was
   * no client yet; the user not started (it is given transactions only once its start went
   * through). What came for it meanwhile is kept for that retry, and still held: its device may
   * have its keys on the server, and a room key sent to it is not sent again (see
   * `StartingUsers.failed`, and the log, for the bound).
   */
  async #startFailed(userId: string, made: Made, e: unknown): Promise<void> {
    try {
      await (made.client !== undefined ? made.client.close() : made.store?.close?.());
    } catch (closing) {
      this.#logger.warn({ userId, err: errorName(closing) }, "closing a failed start's client failed");
    }
    const { kept, dropped } = this.#starting.failed(userId);
    this.#logger.warn(
      { userId, err: errorName(e), ...kept },
      "a virtual user's start failed: held for a retry",
    );
    if (dropped !== undefined) {
      this.#logger.warn(dropped, "past MAX_FAILED_STARTS_HELD: what was held for a failed start dropped");
    }
  }

  async #startUser(
    userId: string,
    opts: { deviceId?: string; displayName?: string },
    openedDir: string | undefined,
    made: Made,
  ): Promise<VirtualUser> {
    if (userId !== this.senderUserId) await registerUser(this.#http, userId);
    const dir =
      openedDir ??
      (this.#opts.dataDir !== undefined ? virtualUserPaths(this.#opts.dataDir, userId).dir : undefined);
    made.store ??= dir ? await SqliteClientStore.open(join(dir, CLIENT_STORE_FILE)) : new MemoryClientStore();
    const store = made.store;
    const stored = await store.loadSession();
    const deviceId = opts.deviceId ?? (stored?.userId === userId ? stored.deviceId : newDeviceId());
    await ensureDevice(this.#http, userId, deviceId, opts.displayName);
    const enc = this.#opts.encryption ?? true;
    const cryptoStore: CryptoStoreOption = dir
      ? { directory: dir }
      : (account) => MemoryCryptoStore.open({ userId: account.userId, deviceId: account.deviceId });
    const client = new MatrixClient({
      ...this.#opts.clientOptions,
      homeserverUrl: this.#opts.homeserverUrl,
      store,
      appserviceUser: true,
      logger: this.#logger,
      ...(this.#opts.fetch ? { fetch: this.#opts.fetch } : {}),
      ...(enc === false ? {} : { encryption: { ...(enc === true ? {} : enc), store: cryptoStore } }),
    });
    made.client = client;
    await client.restore({
      homeserverUrl: client.homeserverUrl,
      userId,
      deviceId,
      accessToken: this.registration.as_token,
    });
    // The server's one-time key count now (an empty upload answers it): transactions carry counts
    // only when they change, and an unknown count would read as zero and upload a needless batch.
    const known: KnownKeyCounts = {};
    if (enc !== false) {
      const res = await client.http.request({
        method: "POST",
        path: path`/_matrix/client/v3/keys/upload`,
        body: {},
        schema: keysUploadResponseSchema,
      });
      known.oneTimeKeyCounts = res.one_time_key_counts;
    }
    const last = txnOfToken(client.nextBatch);
    const vu: VirtualUser = { client, known, fed: new Set(last === undefined ? [] : [last]) };
    await this.#endStart(vu);
    return vu;
  }

  /**
   * The end of a user's start, in `#chain` (no transaction is fed in between): its rooms caught up
   * and the Olm-encrypted to-device messages (room keys) and device-list changes held for it fed,
   * then the client is given to `user()`'s caller. The rest is handed over after that
   * (start-handover.ts), once its caller has had the client (it puts its handlers on it, as before
   * `listen()`: an event fed before is missed), and before any later transaction: each held
   * transaction as the user's share of it would have been, its to-device messages in the order
   * they came (the events of the encrypted ones emitted again), then its room events and read
   * receipts.
   */
  #endStart(vu: VirtualUser): Promise<void> {
    const userId = vu.client.userId;
    return new Promise<void>((resolve, reject) => {
      void this.#serially(async () => {
        let txns: HandoverTxn[];
        try {
          await this.#heldToDevice?.restoreInto(this.#starting, userId);
          await catchUp(this.#http, vu.client, vu.known, () =>
            this.#nextBatch(txnOfToken(vu.client.nextBatch)),
          );
          txns = await feedBeforeReturn(vu, this.#starting.held(userId), () =>
            this.#nextBatch(txnOfToken(vu.client.nextBatch)),
          );
        } catch (e) {
          // Not started, and what was held for it still is (#startFailed).
          reject(e);
          return;
        }
        // Started only now, its start gone through: a failed one is never given transactions.
        this.#starting.take(userId);
        this.#started.set(userId, vu);
        resolve();
        if (txns.length === 0) {
          await this.#heldToDevice?.release(userId);
          return;
        }
        const handOver = async () => {
          await handAfterReturn(this.#handover, vu, txns);
          await this.#heldToDevice?.release(userId);
        };
        // Restored by `start()`: its caller puts the handlers on before `listen()`.
        if (!this.#ready) {
          this.#deferredHandovers.push(handOver);
          return;
        }
        // A macrotask: by then `user()`'s caller has run on (its continuations are microtasks).
        await new Promise<void>((next) => setImmediate(next));
        await handOver();
      });
    });
  }

  /** What the handover after a user's start does with the held transactions' shares. */
  readonly #handover: HandoverHost<VirtualUser> = {
    attempts: MAX_FEED_ATTEMPTS,
    feed: (vu, txnId, txn) => this.#feed(vu, txnId, txn),
    giveUp: (vu, txnId, e) => this.#giveUp(vu, txnId, e, "held transaction given up"),
  };

  /**
   * Asks the homeserver to call this appservice's `/_matrix/app/v1/ping` (Matrix 1.7) with a
   * transaction ID (`transactionId`, or a fresh one): a check that the homeserver can reach the
   * endpoint (start it first) and that the two agree on the tokens. Returns how long the call took
   * from the homeserver's side, and whether it reached this appservice's own listener (`relayed`,
   * see `PingResult`). Fails with `MatrixError`: `M_URL_NOT_SET` (400), `M_BAD_STATUS` (502, the
   * endpoint answered an error, e.g. a wrong `hs_token`), `M_CONNECTION_FAILED` (502),
   * `M_CONNECTION_TIMEOUT` (504), `M_FORBIDDEN` (403).
   */
  async pingHomeserver(transactionId?: string): Promise<PingResult> {
    const id = transactionId ?? `keyroom_ping_${randomBytes(12).toString("hex")}`;
    if (this.#pings.has(id)) throw new AppserviceError("PING_UNDER_WAY", "a ping with that ID is under way");
    this.#pings.set(id, false);
    try {
      const res = await this.#http.request({
        method: "POST",
        path: path`/_matrix/client/v1/appservice/${this.registration.id}/ping`,
        body: { transaction_id: id },
        schema: appservicePingResponseSchema,
      });
      return { durationMs: res.duration_ms, transactionId: id, relayed: this.#pings.get(id) === true };
    } finally {
      this.#pings.delete(id);
    }
  }

  /** The IDs of a user's devices (the user must be one the appservice controls). */
  async listDevices(userId: string): Promise<string[]> {
    if (!this.controls(userId)) {
      throw new AppserviceError("NOT_IN_NAMESPACE", `${userId} is not in the appservice's namespaces`);
    }
    const res = await this.#http.request({
      method: "GET",
      path: path`/_matrix/client/v3/devices`,
      query: { user_id: userId },
      schema: jsonObjectSchema,
    });
    const devices = Array.isArray(res.devices) ? (res.devices as unknown[]) : [];
    return devices.flatMap((d) => {
      const id = (d as { device_id?: unknown } | null)?.device_id;
      return typeof id === "string" ? [id] : [];
    });
  }

  /**
   * Deletes devices of a user the appservice controls (MSC4190: no User-Interactive Auth, the
   * appservice acts for the user), e.g. a device whose keys were lost with its machine.
   */
  async deleteDevices(userId: string, deviceIds: readonly string[]): Promise<void> {
    if (!this.controls(userId)) {
      throw new AppserviceError("NOT_IN_NAMESPACE", `${userId} is not in the appservice's namespaces`);
    }
    if (deviceIds.length === 0) return;
    await this.#http.request({
      method: "POST",
      path: path`/_matrix/client/v3/delete_devices`,
      query: { user_id: userId },
      body: { devices: [...deviceIds] },
      schema: emptyResponseSchema,
    });
  }

  /**
   * Whether the user has published a cross-signing identity (a master key): a user that has one
   * but no device here was set up elsewhere (or its data directory was lost), and gets its
   * identity back with its recovery key rather than a new one.
   */
  async hasCrossSigningIdentity(userId: string): Promise<boolean> {
    const res = await this.#http.request({
      method: "POST",
      path: path`/_matrix/client/v3/keys/query`,
      body: { device_keys: { [userId]: [] } },
      schema: keysQueryResponseSchema,
    });
    const master = res.master_keys?.[userId];
    return typeof master === "object" && master !== null;
  }

  /**
   * A sync token for a fed response. It names the transaction it came from, so a user restored
   * from `dataDir` knows the last transaction it handled and skips it if the homeserver sends it
   * again (the appservice stopped after feeding it, before answering).
   */
  #nextBatch(txnId: string | undefined): string {
    this.#feeds += 1;
    const base = `appservice_${Date.now().toString(36)}_${this.#feeds}`;
    return txnId === undefined ? base : `${base}${TXN_MARK}${encodeURIComponent(txnId)}`;
  }

  #serially(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #inOrder(fn: () => Promise<void>): Promise<void> {
    const run = this.#txnChain.then(fn);
    this.#txnChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Handles one transaction (the listener calls this; call it yourself to receive transactions
   * some other way). Returns false for a transaction already handled. A throw means it was not
   * handled completely: the homeserver retries it, and users that had their share skip it.
   */
  handleTransaction(txnId: string, txn: Transaction): Promise<boolean> {
    if (this.#closed) return Promise.reject(new AppserviceError("CLOSED", "the appservice is closed"));
    // Handled before the known users are back, a transaction would be acknowledged without them.
    if (!this.#ready) return Promise.reject(new AppserviceError("NOT_STARTED", "start() has not finished"));
    return this.#seen.once(txnId, () =>
      this.#inOrder(async () => {
        await this.#serially(() => this.#dispatch(txnId, txn));
        // Outside `#chain`: it may start a user (e.g. one an invite names), whose set-up takes it.
        await this.#opts.onTransaction?.(txn, txnId);
      }),
    );
  }

  async #dispatch(txnId: string, txn: Transaction): Promise<void> {
    for (const handOver of this.#deferredHandovers.splice(0)) await handOver();
    for (const dropped of this.#starting.hold(txnId, txn))
      this.#logger.warn({ txnId, ...dropped }, "past MAX_*_HELD_WHILE_STARTING for a starting user: dropped");
    // On disk before it is acknowledged: the homeserver does not send it again.
    await this.#heldToDevice?.persistFrom(this.#starting, txnId);
    let failure: unknown;
    for (const vu of this.#started.values()) {
      if (vu.fed.has(txnId)) continue;
      try {
        await this.#feed(vu, txnId, txn);
      } catch (e) {
        const userId = vu.client.userId;
        const count = vu.failed?.txnId === txnId ? vu.failed.count + 1 : 1;
        vu.failed = { txnId, count };
        const err = e instanceof Error ? e.name : "error";
        if (count < MAX_FEED_ATTEMPTS) {
          failure ??= e;
          this.#logger.warn({ userId, err, attempt: count }, "transaction not handled for a virtual user");
          continue;
        }
        this.#giveUp(vu, txnId, e, "transaction given up for a virtual user");
      }
    }
    if (failure !== undefined) throw failure;
  }

  async #feed(vu: VirtualUser, txnId: string, txn: Transaction): Promise<void> {
    const client = vu.client;
    const view = {
      userId: client.userId,
      deviceId: client.deviceId,
      membership: (roomId: string) => client.getRoom(roomId)?.membership,
    };
    // Key counts are updated on a copy: only a feed that went through keeps them.
    const known: KnownKeyCounts = { ...vu.known };
    const share = userSyncFor(view, txn, this.#nextBatch(txnId), known);
    if (share !== undefined) {
      const rooms = share.response.rooms as { join: Record<string, { state?: unknown }> };
      // A room joined in this transaction comes with its state, as a sync's newly joined room does.
      for (const roomId of share.joined) {
        const section = rooms.join[roomId];
        if (!section) continue;
        try {
          section.state = { events: await client.fetchRoomState(roomId) };
        } catch (e) {
          // Refused for good (the user left or was kicked before it was asked, or the room is
          // gone): left out of this share, rather than the share (to-device room keys with it)
          // failing at every attempt until given up. Not joined without its state either: a room
          // without its m.room.encryption would read as unencrypted. A later leave comes as usual.
          if (!(e instanceof MatrixError && (e.httpStatus === 403 || e.httpStatus === 404))) throw e;
          delete rooms.join[roomId];
        }
      }
      await client.feedSync(syncResponseSchema.parse(share.response));
      Object.assign(vu.known, known);
    }
    this.#remember(vu, txnId);
  }

  /** A user's share of a transaction failed `MAX_FEED_ATTEMPTS` times: skipped for it, and reported. */
  #giveUp(vu: VirtualUser, txnId: string, e: unknown, message: string): void {
    const userId = vu.client.userId;
    this.#logger.error({ userId, err: errorName(e) }, message);
    this.#remember(vu, txnId);
    this.#opts.onError?.(e, userId, txnId);
  }

  #remember(vu: VirtualUser, txnId: string): void {
    vu.fed.add(txnId);
    if (vu.fed.size > MAX_FED_TXNS_PER_USER) {
      const oldest = vu.fed.values().next().value;
      if (oldest !== undefined) vu.fed.delete(oldest);
    }
  }

  /** Stops the listener and closes every virtual user's client (their stores with them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener?.close();
    await this.#txnChain;
    await this.#chain;
    const users = await Promise.allSettled([...this.#users.values()]);
    for (const u of users) if (u.status === "fulfilled") await u.value.client.close();
    for (const dropped of this.#starting.clear()) {
      if (anyHeld(dropped)) this.#logger.warn(dropped, "closed: what was held for a failed start dropped");
    }
  }
}
