/**
 * The IndexedDB crypto store (via `idb`), for browsers. One IndexedDB transaction per
 * `saveChanges` (its writes: `apply.ts`); numbered schema upgrades (`upgrades.ts`); tabs and workers share a database through
 * its lease (`lease.ts`: a Web Lock, a generation checked in every write transaction, and a
 * BroadcastChannel that tells the others to reload).
 * Secret fields are sealed by the store cipher before they reach IndexedDB. Without a passphrase or
 * key the store key is wrapped by a non-extractable Web Crypto key kept beside it (`store-key.ts`):
 * the page can open the store, nobody can read the key's bytes out of the database; someone who
 * can run code as this origin (or with the browser profile) can still open it, so pass a passphrase
 * when the threat model includes that.
 */
import { type IDBPDatabase, unwrap, wrap } from "idb";
import type { CryptoChanges } from "../changes.ts";
import { openAccount, rowAd, type StoreCipher } from "../cipher/store-cipher.ts";
import { isDamagedRecord, StoreError, StoreLockedError } from "../errors.ts";
import { type IdentityRequest, resolveIdentity } from "../identity.ts";
import type { JsonValue } from "../json.ts";
import { isPerMessage } from "../per-message.ts";
import type {
  AccountRecord,
  BackupStateRecord,
  CrossSigningIdentityRecord,
  DeviceRecord,
  InboundGroupSessionRecord,
  OlmSessionRecord,
  OutboundGroupSessionRecord,
  OutgoingKeyRequestRecord,
  QueuedRequestRecord,
  ReplayRecord,
  RivalRoomKeyRecord,
  RoomSessionKey,
  RoomSettingsRecord,
  StoreIdentity,
  TrackedUserRecord,
  WithheldRecord,
} from "../records.ts";
import type {
  BackUpReadOptions,
  CryptoStore,
  InboundGroupSessionCounts,
  InboundGroupSessionPage,
  LeaseGrant,
} from "../store.ts";
import {
  checkMaxUnreadable,
  parseAccount,
  parseBackupState,
  parseCrossSigningIdentity,
  parseCustomValue,
  parseDevice,
  parseIdentity,
  parseInboundGroupSession,
  parseLimit,
  parseNextBatch,
  parseOlmSession,
  parseOutboundGroupSession,
  parseOutgoingKeyRequest,
  parsePageRequest,
  parseQueuedRequest,
  parseReplay,
  parseRoomSettings,
  parseSecret,
  parseSessionKeys,
  parseTrackedUser,
  parseUserIds,
  parseWithheld,
} from "../validate.ts";
import { applyChanges } from "./apply.ts";
import { handleTransactionEnds, idbError } from "./idb-errors.ts";
import { inboundForRoom, inboundPage, inboundToBackUp } from "./inbound-reads.ts";
import {
  defaultChannelFactory,
  IdbLeaseLock,
  type LeaseChannel,
  type LeaseChannelFactory,
  leaseLockName,
  type WebLockManager,
} from "./lease.ts";
import { requestToPromise } from "./ordered.ts";
import { readRivals } from "./rivals.ts";
import { changeStorePassphrase, openStoreCipher } from "./store-key.ts";
import { IDB_SCHEMA_VERSION, IDB_STORE_NAMES, upgradeIdb } from "./upgrades.ts";

export const DEFAULT_IDB_NAME = "keyroom-crypto";

export interface IndexedDbCryptoStoreOptions extends IdentityRequest {
  /** Database name (one per account and device). */
  readonly name?: string;
  readonly passphrase?: string;
  readonly key?: Uint8Array;
  /** PBKDF2 iterations for a NEW passphrase-protected store (default `STORE_KDF_ITERATIONS`). */
  readonly kdfIterations?: number;
  /** Defaults to `globalThis.indexedDB`; pass fake-indexeddb's factory in tests. */
  readonly indexedDB?: IDBFactory;
  /** Defaults to `globalThis.IDBKeyRange` (must come from the same implementation as `indexedDB`). */
  readonly keyRange?: typeof IDBKeyRange;
  /** Defaults to `navigator.locks` when the runtime has it. */
  readonly locks?: WebLockManager;
  /** Defaults to the runtime's `BroadcastChannel` (tells other contexts to reload). */
  readonly broadcast?: LeaseChannelFactory;
}

/** The `meta` key of the lease generation (see `lease.ts`). */
const GENERATION_KEY = "lease_generation";
/**
 * The `meta` key set (true) by the save that raises the generation under the lease, deleted by a
 * save outside it and by every open: while it is there, no context opened since the holder raised
 * the generation, so the holder's further saves in that hold need not raise it again. It says
 * nothing about which hold set it (a context may go away holding the lock): each context knows
 * whether its own hold raised it (`#raisedThisHold`).
 */
const RAISED_KEY = "lease_raised";

function generationOf(v: unknown): number {
  return typeof v === "number" && Number.isSafeInteger(v) ? v : 0;
}

/**
 * At open, before anything the caller keeps is read: the generation, in a write transaction that
 * also deletes `RAISED_KEY`. Opening takes no Web Lock (the lock is held only for units of work,
 * and a page must open while another tab works), so it may fall in the middle of another context's
 * hold, after that hold's first save raised the generation: this context reads that generation and
 * the holder's saves so far, and the holder, finding `RAISED_KEY` gone, raises the generation
 * again at its next save (and its release then tells this context). IndexedDB runs write
 * transactions over `meta` one at a time, so this one falls wholly before or after each save.
 * (The client reads its engine under the lease after opening, but the store's view is per
 * instance: what an instance read outside the lease must not go old unnoticed either.)
 */
async function readGeneration(db: Db): Promise<number> {
  const tx = db.transaction("meta", "readwrite");
  const [stored] = await Promise.all([tx.store.get(GENERATION_KEY), tx.store.delete(RAISED_KEY), tx.done]);
  return generationOf(stored);
}

type Row = { readonly [field: string]: unknown };
type Db = IDBPDatabase<unknown>;

function isRow(v: unknown): v is Row {
  return typeof v === "object" && v !== null;
}

function defaultLocks(): WebLockManager | undefined {
  const nav = (globalThis as { navigator?: { locks?: WebLockManager } }).navigator;
  return nav?.locks;
}

/** Resolves with the database; a connection elsewhere blocking the upgrade is `StoreLockedError`. */
function openRequest(request: IDBOpenDBRequest, name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let settled = false;
    request.onsuccess = () => {
      if (settled)
        request.result.close(); // opened after we gave up on it
      else resolve(request.result);
      settled = true;
    };
    request.onerror = () => {
      settled = true;
      reject(request.error);
    };
    request.onblocked = () => {
      settled = true;
      reject(new StoreLockedError(`IndexedDB database "${name}" (an older connection blocks the upgrade)`));
    };
  });
}

/**
 * Settles as the transaction ends. A failed request's error event reaches the transaction before
 * the abort that follows it sets `tx.error` (null until then): the abort says why.
 */
function txDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new StoreError("BACKEND", "IndexedDB transaction aborted"));
  });
}

export class IndexedDbCryptoStore implements CryptoStore {
  readonly #db: Db;
  readonly #cipher: StoreCipher;
  readonly #identity: StoreIdentity;
  readonly #range: typeof IDBKeyRange;
  readonly #name: string;
  readonly #lock: IdbLeaseLock;
  /** Saves outside the lease, one at a time: each holds the lock for its one transaction. */
  #outside: Promise<void> = Promise.resolve();
  readonly #channel: LeaseChannel | undefined;
  readonly #listeners = new Set<() => void>();
  /** The generation this instance last set or read (at open, taking the lease, saving). */
  #seen: number;
  /**
   * This hold of the lease saved something: its release tells the other contexts to reload. A
   * hold that only read tells no one; otherwise two idle tabs would wake each other for ever
   * (each one's catch-up takes the lease).
   */
  #wroteThisHold = false;
  /** This hold raised the generation (its first save did): later saves need not, see `RAISED_KEY`. */
  #raisedThisHold = false;
  #closed = false;
  /**
   * Another context upgraded or deleted the database (a newer Keyroom in another tab, a logout):
   * IndexedDB asked this connection to close, and it did. Reopening could bring up an empty store.
   */
  #closedElsewhere = false;

  private constructor(
    db: Db,
    cipher: StoreCipher,
    identity: StoreIdentity,
    range: typeof IDBKeyRange,
    name: string,
    lock: IdbLeaseLock,
    channel: LeaseChannel | undefined,
    seen: number,
  ) {
    this.#db = db;
    this.#cipher = cipher;
    this.#identity = identity;
    this.#range = range;
    this.#name = name;
    this.#lock = lock;
    this.#channel = channel;
    this.#seen = seen;
    const raw = unwrap(db);
    raw.onversionchange = () => {
      this.#closedElsewhere = true;
      raw.close();
    };
    // An abort of a shortcut read's transaction must not also reach the page as an unhandled rejection.
    handleTransactionEnds(raw);
    channel?.addEventListener("message", this.#onMessage);
  }

  readonly #onMessage = (event: { data: unknown }): void => {
    const data = event.data;
    if (typeof data !== "object" || data === null) return;
    const generation = (data as { generation?: unknown }).generation;
    if (typeof generation !== "number" || generation === this.#seen) return;
    for (const listener of this.#listeners) listener();
  };

  static async open(options: IndexedDbCryptoStoreOptions): Promise<IndexedDbCryptoStore> {
    const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    const range = options.keyRange ?? (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange;
    if (factory === undefined || range === undefined) {
      throw new StoreError("BAD_OPTION", "IndexedDB is not available here; pass indexedDB and keyRange");
    }
    if (options.passphrase !== undefined && options.key !== undefined) {
      throw new StoreError("BAD_OPTION", "give a passphrase or a key, not both");
    }
    const name = options.name ?? DEFAULT_IDB_NAME;
    if (name.length === 0) throw new StoreError("BAD_OPTION", "the database name must not be empty");
    let db: Db | undefined;
    try {
      const request = factory.open(name, IDB_SCHEMA_VERSION);
      request.onupgradeneeded = (event) => {
        const tx = request.transaction;
        if (tx !== null) upgradeIdb(request.result, tx, event.oldVersion);
      };
      let raw: IDBDatabase;
      try {
        raw = await openRequest(request, name);
      } catch (e) {
        if (e instanceof StoreLockedError) throw e;
        if (e instanceof DOMException && e.name === "VersionError") {
          throw new StoreError(
            "SCHEMA_TOO_NEW",
            `IndexedDB database "${name}" has a newer schema than this Keyroom understands; upgrade Keyroom`,
          );
        }
        throw new StoreError("BACKEND", `IndexedDB database "${name}" could not be opened`, { cause: e });
      }
      db = wrap(raw);
      // Another connection asking to upgrade or delete the database: let it (we are closing anyway).
      raw.onversionchange = () => raw.close();
      // A second pass only when another context created the store during the first one.
      let opened: { identity: StoreIdentity; cipher: StoreCipher } | undefined;
      for (let pass = 0; opened === undefined && pass < 2; pass++) {
        // Read in one transaction: the identity checked must be the one the key header came with.
        const tx = db.transaction("meta");
        const [storedIdentity, header] = await Promise.all([
          tx.store.get("identity"),
          tx.store.get("store_key"),
          tx.done,
        ]);
        const identity = resolveIdentity(
          storedIdentity === undefined ? undefined : parseIdentity(storedIdentity),
          options,
        );
        const cipher = await openStoreCipher(db, options, identity, header);
        if (cipher !== undefined) opened = { identity, cipher };
      }
      if (opened === undefined) {
        throw new StoreError("BACKEND", `IndexedDB database "${name}" changed while it was being created`);
      }
      const { identity, cipher } = opened;
      // The account is bound to the identity: one rewritten in the database fails here, typed,
      // before anyone logs in under it.
      const account: unknown = await db.get("meta", "account");
      if (account !== undefined) parseAccount(openAccount(cipher, account, identity));
      const seen = await readGeneration(db);
      const lock = new IdbLeaseLock(name, options.locks ?? defaultLocks());
      const channel = (options.broadcast ?? defaultChannelFactory())?.(leaseLockName(name));
      return new IndexedDbCryptoStore(db, cipher, identity, range, name, lock, channel, seen);
    } catch (e) {
      db?.close();
      // IndexedDB's own failures after the database opened (a transaction aborted, the quota
      // reached while the new store's key is written) are the back end's, as in saveChanges.
      if (e instanceof DOMException) {
        throw new StoreError("BACKEND", `IndexedDB database "${name}" could not be opened`, { cause: e });
      }
      throw e;
    }
  }

  #d(): Db {
    if (this.#closed) throw new StoreError("CLOSED", "this crypto store is closed");
    if (this.#closedElsewhere) {
      throw new StoreError(
        "CLOSED",
        `IndexedDB database "${this.#name}" was upgraded or deleted by another context, which closed it here`,
      );
    }
    return this.#db;
  }

  /** A read: IndexedDB's own failures become typed (`idbError`); the store's errors pass through. */
  async #read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (e) {
      throw idbError(e, `reading IndexedDB database "${this.#name}"`);
    }
  }

  #open(sealed: unknown, ad: string): unknown {
    return this.#cipher.decrypt(sealed, ad);
  }

  #olm(r: unknown): OlmSessionRecord {
    const row = isRow(r) ? r : {};
    return parseOlmSession({
      ...row,
      pickle: this.#open(row.pickle, rowAd("olm", String(row.senderKey), String(row.sessionId))),
    });
  }

  #inbound(r: unknown): InboundGroupSessionRecord {
    const row = isRow(r) ? r : {};
    return parseInboundGroupSession({
      ...row,
      backedUp: row.backedUp === 1,
      pickle: this.#open(row.pickle, rowAd("inbound", String(row.roomId), String(row.sessionId))),
    });
  }

  async loadIdentity(): Promise<StoreIdentity> {
    this.#d();
    return { ...this.#identity };
  }

  async loadAccount(): Promise<AccountRecord | undefined> {
    return this.#read(async () => {
      const v: unknown = await this.#d().get("meta", "account");
      return v === undefined ? undefined : parseAccount(openAccount(this.#cipher, v, this.#identity));
    });
  }

  async getOlmSessions(senderKey: string, unreadable?: string[]): Promise<OlmSessionRecord[]> {
    return this.#read(async () => {
      const rows = await this.#d().getAllFromIndex("olm_sessions", "senderKey", senderKey);
      const out: OlmSessionRecord[] = [];
      for (const r of rows) {
        try {
          out.push(this.#olm(r));
        } catch (e) {
          if (unreadable === undefined || !isDamagedRecord(e)) throw e;
          unreadable.push(String(isRow(r) ? r.sessionId : ""));
        }
      }
      return out;
    });
  }

  async getInboundGroupSession(
    roomId: string,
    sessionId: string,
  ): Promise<InboundGroupSessionRecord | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("inbound_group_sessions", [roomId, sessionId]);
      return r === undefined ? undefined : this.#inbound(r);
    });
  }

  async getInboundGroupSessions(keys: readonly RoomSessionKey[]): Promise<InboundGroupSessionRecord[]> {
    return this.#read(async () => {
      const unique = new Map<string, RoomSessionKey>();
      for (const k of parseSessionKeys(keys)) unique.set(JSON.stringify([k.roomId, k.sessionId]), k);
      if (unique.size === 0) return [];
      // One transaction, every request issued at once: the back end answers them in one go rather
      // than one event-loop round trip per session.
      const sessions = this.#d().transaction("inbound_group_sessions").store;
      const rows: unknown[] = await Promise.all(
        [...unique.values()].map((k) => sessions.get([k.roomId, k.sessionId])),
      );
      const out: InboundGroupSessionRecord[] = [];
      for (const r of rows) if (r !== undefined) out.push(this.#inbound(r));
      return out;
    });
  }

  async getInboundGroupSessionsForRoom(
    roomId: string,
    unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]> {
    return this.#read(() =>
      inboundForRoom(this.#d(), this.#range, roomId, (r) => this.#inbound(r), unreadable),
    );
  }

  async countInboundGroupSessions(): Promise<InboundGroupSessionCounts> {
    return this.#read(async () => {
      const db = this.#d();
      const [total, backedUp] = await Promise.all([
        db.count("inbound_group_sessions"),
        db.countFromIndex("inbound_group_sessions", "backedUp", 1),
      ]);
      return { total, backedUp };
    });
  }

  async listInboundGroupSessions(
    page: InboundGroupSessionPage,
    unreadable?: RoomSessionKey[],
  ): Promise<InboundGroupSessionRecord[]> {
    return this.#read(async () => {
      const { after, limit } = parsePageRequest(page);
      return inboundPage(this.#d(), this.#range, after, limit, (r) => this.#inbound(r), unreadable);
    });
  }

  async getInboundGroupSessionsToBackUp(
    limit: number,
    unreadable?: RoomSessionKey[],
    options?: BackUpReadOptions,
  ): Promise<InboundGroupSessionRecord[]> {
    return this.#read(async () => {
      if (!Number.isSafeInteger(limit) || limit < 1) {
        throw new StoreError("BAD_OPTION", "the batch limit must be a positive integer");
      }
      checkMaxUnreadable(options);
      return inboundToBackUp(this.#d(), limit, (r) => this.#inbound(r), unreadable, options);
    });
  }

  async getOutboundGroupSession(roomId: string): Promise<OutboundGroupSessionRecord | undefined> {
    return this.#read(async () => {
      // One transaction, so the ratchet and the device lists come from the same saved step.
      const tx = this.#d().transaction(["outbound_group_sessions", "outbound_group_session_sharing"]);
      const [r, sharing]: unknown[] = await Promise.all([
        tx.objectStore("outbound_group_sessions").get(roomId),
        tx.objectStore("outbound_group_session_sharing").get(roomId),
      ]);
      if (!isRow(r)) return undefined;
      return parseOutboundGroupSession({
        ...(isRow(sharing) ? sharing : {}),
        ...r,
        pickle: this.#open(r.pickle, rowAd("outbound", roomId)),
      });
    });
  }

  async getUserDevices(userId: string): Promise<DeviceRecord[]> {
    return this.#read(async () => {
      const rows = await this.#d().getAll("devices", this.#range.bound([userId], [userId, []]));
      return rows.map(parseDevice);
    });
  }

  async getDevicesOfUsers(userIds: readonly string[]): Promise<DeviceRecord[]> {
    return this.#read(async () => {
      const unique = [...new Set(parseUserIds(userIds))];
      if (unique.length === 0) return [];
      // One transaction, every request issued at once (see getInboundGroupSessions).
      const devices = this.#d().transaction("devices").store;
      const perUser: unknown[][] = await Promise.all(
        unique.map((userId) => devices.getAll(this.#range.bound([userId], [userId, []]))),
      );
      return perUser.flat().map(parseDevice);
    });
  }

  async getDeviceByCurve25519Key(curve25519Key: string): Promise<DeviceRecord | undefined> {
    return this.#read(async () => {
      const devices = (await this.#d().getAllFromIndex("devices", "curve25519Key", curve25519Key)).map(
        parseDevice,
      );
      return devices.find((d) => !d.deleted) ?? devices[0];
    });
  }

  async getCrossSigningIdentity(userId: string): Promise<CrossSigningIdentityRecord | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("cross_signing_identities", userId);
      return r === undefined ? undefined : parseCrossSigningIdentity(r);
    });
  }

  async getSecret(name: string): Promise<string | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("secrets", name);
      return isRow(r) ? parseSecret(name, this.#open(r.value, rowAd("secret", name))) : undefined;
    });
  }

  async getTrackedUsers(): Promise<TrackedUserRecord[]> {
    return this.#read(async () => {
      return (await this.#d().getAll("tracked_users")).map(parseTrackedUser);
    });
  }

  async getOutgoingKeyRequests(): Promise<OutgoingKeyRequestRecord[]> {
    return this.#read(async () => {
      return (await this.#d().getAll("outgoing_key_requests")).map(parseOutgoingKeyRequest);
    });
  }

  async getRivalRoomKeys(): Promise<RivalRoomKeyRecord[]> {
    return this.#read(async () =>
      readRivals(await this.#d().getAllFromIndex("rival_room_keys", "seq"), this.#cipher),
    );
  }

  async getWithheld(roomId: string, sessionId: string): Promise<WithheldRecord | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("withheld", [roomId, sessionId]);
      return r === undefined ? undefined : parseWithheld(r);
    });
  }

  async isOlmMessageKnown(senderKey: string, hash: string): Promise<boolean> {
    return this.#read(async () => {
      return (await this.#d().count("olm_message_hashes", [senderKey, hash])) > 0;
    });
  }

  async getCustomValue(key: string): Promise<JsonValue | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("custom_values", key);
      return isRow(r) ? parseCustomValue(key, this.#open(r.value, rowAd("custom", key))) : undefined;
    });
  }

  async getReplays(roomId: string, sessionId: string, limit: number): Promise<ReplayRecord[]> {
    return this.#read(async () => {
      const range = this.#range.bound([roomId, sessionId], [roomId, sessionId, []]);
      const db = this.#d();
      if (limit < 1) return []; // getAll takes a count of 0 as no limit
      const rows: unknown[] = await db.getAll("replays", range, limit);
      return rows.map(parseReplay);
    });
  }

  async getReplaysOfSessions(sessions: readonly RoomSessionKey[], limit: number): Promise<ReplayRecord[]> {
    return this.#read(async () => {
      const unique = new Map<string, RoomSessionKey>();
      for (const k of parseSessionKeys(sessions)) unique.set(JSON.stringify([k.roomId, k.sessionId]), k);
      const max = parseLimit(limit);
      if (unique.size === 0) return [];
      // One transaction, every request issued at once (see getInboundGroupSessions).
      const replays = this.#d().transaction("replays").store;
      const perSession: unknown[][] = await Promise.all(
        [...unique.values()].map((k) =>
          replays.getAll(this.#range.bound([k.roomId, k.sessionId], [k.roomId, k.sessionId, []]), max),
        ),
      );
      return perSession.flat().map(parseReplay);
    });
  }

  async getReplay(
    roomId: string,
    sessionId: string,
    messageIndex: number,
  ): Promise<ReplayRecord | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("replays", [roomId, sessionId, messageIndex]);
      return r === undefined ? undefined : parseReplay(r);
    });
  }

  async getRoomSettings(roomId: string): Promise<RoomSettingsRecord | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("room_settings", roomId);
      return r === undefined ? undefined : parseRoomSettings(r);
    });
  }

  async getBackupState(): Promise<BackupStateRecord | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("meta", "backup_state");
      return r === undefined ? undefined : parseBackupState(r);
    });
  }

  async getQueuedRequests(): Promise<QueuedRequestRecord[]> {
    return this.#read(async () => {
      const rows = await this.#d().getAllFromIndex("queued_requests", "age");
      return rows.map((r: unknown) => {
        const row = isRow(r) ? r : {};
        return parseQueuedRequest({
          ...row,
          body: this.#open(row.body, rowAd("queued", String(row.requestId))),
        });
      });
    });
  }

  async getNextBatch(): Promise<string | undefined> {
    return this.#read(async () => {
      const r: unknown = await this.#d().get("meta", "next_batch");
      return r === undefined ? undefined : parseNextBatch(r);
    });
  }

  async saveChanges(changes: CryptoChanges): Promise<void> {
    this.#d();
    let saved: Promise<void>;
    if (this.#lock.held) saved = this.#save(changes, true);
    else {
      saved = this.#outside.then(() => this.#saveOutside(changes));
      this.#outside = saved.catch(() => {});
    }
    try {
      await saved;
    } catch (e) {
      throw idbError(e, `saving to IndexedDB database "${this.#name}" (nothing was saved)`);
    }
  }

  /**
   * A save outside the lease takes the store for its one transaction: it holds the lock meanwhile
   * (a handle of its own, so a `tryAcquireLease` in between finds the lock taken rather than
   * shares it), and is refused (STALE) while another context holds the lease, as SQLite refuses
   * it: the holder may be about to save what it read, and its view must not silently go old.
   */
  async #saveOutside(changes: CryptoChanges): Promise<void> {
    // This context took the lease while the save waited its turn.
    if (this.#lock.held) return this.#save(changes, true);
    const lock = this.#lock.sibling();
    if (!(await lock.tryTake())) {
      throw new StoreLockedError(`IndexedDB database "${this.#name}"`, { code: "STALE" });
    }
    try {
      await this.#save(changes, false);
    } finally {
      await lock.release();
    }
  }

  /** `leased`: under this context's lease. */
  async #save(changes: CryptoChanges, leased: boolean): Promise<void> {
    // The raw transaction: requests are queued without awaiting each, and an abort rolls back all.
    // Key material and everything else a lost commit would break waits for the disk ("strict":
    // browsers default to "relaxed", which an OS crash or power loss may undo); per-message
    // commits do not (docs/stores.md, "Durability").
    const durability = isPerMessage(changes) ? "relaxed" : "strict";
    const raw = unwrap(this.#d()).transaction([...IDB_STORE_NAMES], "readwrite", { durability });
    const done = txDone(raw);
    let generation: number | undefined;
    try {
      generation = await this.#fence(raw, leased);
      await applyChanges(raw, changes, this.#cipher, this.#identity, this.#range);
    } catch (e) {
      try {
        raw.abort();
      } catch {
        // already finished or aborted
      }
      await done.catch(() => {});
      // A request failed as the browser aborted the transaction (the quota used up, Chromium's
      // limit on one value): the transaction's error says why (an abort of ours leaves none).
      throw raw.error ?? e;
    }
    await done;
    // Committed: only now does this context's view move (an aborted save raised nothing).
    if (generation !== undefined) this.#seen = generation;
    if (leased) {
      this.#wroteThisHold = true;
      this.#raisedThisHold = true;
    }
  }

  /**
   * First in every write transaction: refuses (STALE) when another context saved since this one
   * last set or read the generation. Raises the generation, so the others know to reload, unless
   * this hold raised it already and no context opened since (`RAISED_KEY`). Returns what it raised
   * it to, for once the transaction has committed.
   */
  async #fence(tx: IDBTransaction, leased: boolean): Promise<number | undefined> {
    const meta = tx.objectStore("meta");
    const [stored, raised] = await Promise.all([
      requestToPromise(meta.get(GENERATION_KEY)),
      requestToPromise(meta.get(RAISED_KEY)),
    ]);
    const generation = generationOf(stored);
    if (generation !== this.#seen) {
      await this.#lock.release();
      throw new StoreLockedError(`IndexedDB database "${this.#name}"`, { code: "STALE" });
    }
    if (leased && this.#raisedThisHold && raised === true) return undefined;
    meta.put(generation + 1, GENERATION_KEY);
    if (leased) meta.put(true, RAISED_KEY);
    else meta.delete(RAISED_KEY);
    return generation + 1;
  }

  /**
   * Changes the passphrase of a passphrase-protected store (see `SqliteCryptoStore.changePassphrase`;
   * `store-key.ts`): one header write, records untouched. Runs under this context's lease, or takes
   * the lock for its one transaction; another context holding it is `StoreLockedError("STALE")`.
   */
  async changePassphrase(
    oldPassphrase: string,
    newPassphrase: string,
    options: { readonly kdfIterations?: number } = {},
  ): Promise<void> {
    const db = this.#d();
    const where = `IndexedDB database "${this.#name}"`;
    const lock = this.#lock.held ? undefined : this.#lock.sibling();
    if (lock !== undefined && !(await lock.tryTake())) throw new StoreLockedError(where, { code: "STALE" });
    try {
      await changeStorePassphrase(db, where, oldPassphrase, newPassphrase, options.kdfIterations);
    } catch (e) {
      throw idbError(e, `changing the passphrase of ${where} (nothing was changed)`);
    } finally {
      await lock?.release();
    }
  }

  /**
   * Taking the lock raises nothing (a hold that saves nothing costs the others no reload): the
   * grant is stale when the generation moved since this context last set or read it.
   */
  async tryAcquireLease(_durationMs: number): Promise<LeaseGrant | undefined> {
    const db = this.#d();
    const wasHeld = this.#lock.held;
    if (!(await this.#lock.tryTake())) return undefined;
    try {
      const generation = generationOf(await db.get("meta", GENERATION_KEY));
      const stale = generation !== this.#seen;
      // A new hold: its first save raises the generation, and its release tells the others.
      if (!wasHeld) this.#wroteThisHold = false;
      // Held all along, yet someone else saved (only without Web Locks, from another realm).
      if (!wasHeld || stale) this.#raisedThisHold = false;
      this.#seen = generation;
      return { stale };
    } catch (e) {
      await this.#lock.release();
      throw idbError(e, `taking the lease of IndexedDB database "${this.#name}"`);
    }
  }

  /** A Web Lock does not expire: it is ours until released or until this context goes away. */
  async renewLease(_durationMs: number): Promise<boolean> {
    return this.#lock.held && !this.#closed;
  }

  async releaseLease(): Promise<void> {
    if (!this.#lock.held) return;
    await this.#lock.release();
    if (!this.#wroteThisHold) return;
    this.#wroteThisHold = false;
    try {
      this.#channel?.postMessage({ generation: this.#seen });
    } catch {
      // A closed channel: the others find out when they take the lease.
    }
  }

  onChangedElsewhere(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
    await this.releaseLease();
    this.#channel?.removeEventListener("message", this.#onMessage);
    this.#channel?.close();
    this.#listeners.clear();
  }
}
