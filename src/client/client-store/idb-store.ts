// The client store in IndexedDB: the browser default, so a page reload keeps the session (access
// token, device) and the sync position. One record per room (its snapshot without its state), one
// per state event (keyed [roomId, type, stateKey], so that no value grows with a room's state:
// Chromium refuses one past about 127 MiB) and one per account data type; each `saveSync` is one
// IndexedDB transaction. Records are validated when read back. IndexedDB's own failures are
// `ClientError` `STORE_CLOSED` or `STORE_FAILED`, described as the crypto store describes them
// (`src/store/indexeddb/idb-errors.ts`).
import { type IDBPDatabase, type IDBPTransaction, unwrap, wrap } from "idb";
import { handleTransactionEnds, idbFailure, transactionEnd } from "../../store/indexeddb/idb-errors.ts";
import { basicEventSchema, type StateEvent } from "../../wire/index.ts";
import { ClientError } from "../errors.ts";
import {
  type ClientStore,
  checkStored,
  type RoomSnapshot,
  roomSnapshotSchema,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
  storedSessionSchema,
} from "./store.ts";

export const DEFAULT_CLIENT_IDB_NAME = "keyroom-session";
/**
 * 1: rooms held whole snapshots. 2: a room's state events in `room_state`, one record each
 * (`{ roomId, i, event }`, `i` its place in the snapshot's `state`), the rooms record without `state`.
 */
const SCHEMA_VERSION = 2;
const STORES = ["session", "sync_token", "rooms", "room_state", "account_data"] as const;
const SYNC_STORES = ["sync_token", "rooms", "room_state", "account_data"] as const;
const ONLY = "1";
/**
 * In `sync_token`: a new value at each `saveSync` and `clear`. A connection whose last save or load
 * left another one (another tab wrote since) no longer knows what `room_state` holds.
 */
const WRITER = "writer";

/**
 * Whose session a stored session record is (user and device), to tell whether the store still
 * holds the session a connection syncs for; undefined without one.
 */
function sessionOwner(v: unknown): string | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const { userId, deviceId } = v as { userId?: unknown; deviceId?: unknown };
  return JSON.stringify([userId, deviceId]);
}

/**
 * `e`, thrown while `what` (e.g. `reading client store "x" (IndexedDB)`): the client's own errors
 * pass through, IndexedDB's become `STORE_CLOSED` (the connection) or `STORE_FAILED` with `e` as
 * the cause, the message naming the DOMException but never quoting its message.
 */
function clientStoreError(e: unknown, what: string): Error {
  if (e instanceof ClientError) return e;
  const { code, message } = idbFailure(e, what);
  return new ClientError(code === "CLOSED" ? "STORE_CLOSED" : "STORE_FAILED", message, { cause: e });
}

type Tx<Mode extends IDBTransactionMode> = IDBPTransaction<unknown, string[], Mode>;

const newWriterMark = (): string => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

/** What this connection last saved or loaded of one room's state: its event and place by key. */
type StateIndex = Map<string, { readonly i: number; readonly event: StateEvent }>;

const stateKeyOf = (type: string, stateKey: string): string => `${type.length}:${type}${stateKey}`;

/** Every `room_state` key of one room: `[roomId]` sorts before them, `[roomId, []]` after (arrays sort after strings). */
const roomStateRange = (range: typeof IDBKeyRange, roomId: string): IDBKeyRange =>
  range.bound([roomId], [roomId, []]);

/**
 * Upgrade 2: each stored snapshot's state into `room_state`. A snapshot whose state is not an
 * array of events with string keys, one per key (or not filed under its own room ID), stays whole: it loads (or fails validation) as
 * before, and the room's next save writes it in the new layout.
 */
function splitRoomState(tx: IDBTransaction): void {
  const state = tx.objectStore("room_state");
  const cursorRequest = tx.objectStore("rooms").openCursor();
  cursorRequest.onsuccess = () => {
    const cursor = cursorRequest.result;
    if (cursor === null) return;
    const room: unknown = cursor.value;
    const roomId = cursor.key;
    if (typeof roomId === "string" && typeof room === "object" && room !== null && "state" in room) {
      const events = room.state;
      const keys = new Set<string>();
      const convertible =
        (room as { roomId?: unknown }).roomId === roomId &&
        Array.isArray(events) &&
        events.every((e: unknown) => {
          if (typeof e !== "object" || e === null) return false;
          const { type, state_key } = e as { type?: unknown; state_key?: unknown };
          if (typeof type !== "string" || typeof state_key !== "string") return false;
          const k = stateKeyOf(type, state_key);
          if (keys.has(k)) return false;
          keys.add(k);
          return true;
        });
      if (convertible) {
        events.forEach((event: { type: string; state_key: string }, i: number) => {
          state.put({ roomId, i, event }, [roomId, event.type, event.state_key]);
        });
        const { state: _, ...rest } = room;
        cursor.update(rest);
      }
    }
    cursor.continue();
  };
}

export interface IndexedDbClientStoreOptions {
  /** Database name (one per account an app keeps signed in). Default `keyroom-session`. */
  readonly name?: string;
  /** Defaults to `globalThis.indexedDB`; pass fake-indexeddb's factory in tests. */
  readonly indexedDB?: IDBFactory;
  /** Defaults to `globalThis.IDBKeyRange` (must come from the same implementation as `indexedDB`). */
  readonly keyRange?: typeof IDBKeyRange;
}

function indexState(events: readonly StateEvent[]): StateIndex {
  const index: StateIndex = new Map();
  events.forEach((event, i) => {
    index.set(stateKeyOf(event.type, event.state_key), { i, event });
  });
  return index;
}

export class IndexedDbClientStore implements ClientStore {
  readonly name: string;
  readonly #factory: IDBFactory | undefined;
  readonly #keyRange: typeof IDBKeyRange | undefined;
  #db: Promise<IDBPDatabase<unknown>> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Per room, what this connection last saved or loaded of its state (what `room_state` holds). */
  readonly #known = new Map<string, StateIndex>();
  /**
   * The frozen state array (the client's, `RoomSnapshot.state`) an index of `#known` was made of: a
   * snapshot with that array has nothing to compare, and its room's state is not even read. Gone
   * with the index whenever `#known` forgets it (another tab's save, a clear).
   */
  readonly #arrayOf = new WeakMap<StateIndex, readonly StateEvent[]>();
  /** The `WRITER` value this connection's last save or load left; undefined: none known. */
  #mark: unknown;
  /**
   * The session this connection saved or loaded its sync state under (`sessionOwner`): while the
   * store holds another one or none (another tab logged in as someone else, or logged out),
   * `saveSync` refuses. Undefined: no session known, nothing checked.
   */
  #owner: string | undefined;

  /** Opens the database lazily, at the first call. */
  constructor(options: IndexedDbClientStoreOptions = {}) {
    this.name = options.name ?? DEFAULT_CLIENT_IDB_NAME;
    this.#factory = options.indexedDB;
    this.#keyRange = options.keyRange;
  }

  #open(): Promise<IDBPDatabase<unknown>> {
    this.#db ??= this.#connect();
    return this.#db;
  }

  async #connect(): Promise<IDBPDatabase<unknown>> {
    const factory = this.#factory ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (factory === undefined) throw new ClientError("INVALID_ARGUMENT", "IndexedDB is not available here");
    try {
      const request = factory.open(this.name, SCHEMA_VERSION);
      request.onupgradeneeded = (event) => {
        const db = request.result;
        for (const s of STORES) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
        const tx = request.transaction;
        if (event.oldVersion === 1 && tx !== null) splitRoomState(tx);
      };
      const raw = await new Promise<IDBDatabase>((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      // Another tab upgrading or deleting the database: let it. The next call opens it again, so
      // it fails as a newer store does (STORE_CORRUPT) or finds it deleted, rather than meeting
      // a closed connection's InvalidStateError.
      raw.onversionchange = () => {
        raw.close();
        this.#db = undefined;
      };
      // An abort of a read's transaction must not also reach the page as an unhandled rejection.
      handleTransactionEnds(raw);
      return wrap(raw);
    } catch (e) {
      this.#db = undefined;
      if (e instanceof DOMException && e.name === "VersionError") {
        throw new ClientError(
          "STORE_CORRUPT",
          `client store "${this.name}" is newer than this version of Keyroom`,
        );
      }
      throw clientStoreError(e, `opening client store "${this.name}" (IndexedDB)`);
    }
  }

  /**
   * `body` in one transaction over `stores`, resolved once that committed. A failure aborts it and
   * is typed (`clientStoreError`), with the transaction's error as cause when the browser aborted
   * it (the quota used up: not the AbortError of the requests it failed).
   */
  async #inTransaction<T, Mode extends IDBTransactionMode>(
    what: "reading" | "saving to" | "clearing",
    stores: readonly string[],
    mode: Mode,
    body: (tx: Tx<Mode>) => Promise<T>,
  ): Promise<T> {
    let tx: Tx<Mode> | undefined;
    let end: Promise<void> | undefined;
    try {
      tx = (await this.#open()).transaction([...stores], mode);
      end = transactionEnd(unwrap(tx));
      const result = await body(tx);
      await end;
      return result;
    } catch (e) {
      let error = e;
      if (tx !== undefined && end !== undefined) {
        const raw = unwrap(tx);
        try {
          raw.abort();
        } catch {
          // Already ended.
        }
        await end.catch(() => undefined);
        error = raw.error ?? e;
      }
      const nothing = { reading: "", "saving to": "; nothing was saved", clearing: "; nothing was cleared" };
      throw clientStoreError(error, `${what} client store "${this.name}" (IndexedDB${nothing[what]})`);
    }
  }

  async loadSession(): Promise<StoredSession | undefined> {
    const v: unknown = await this.#inTransaction("reading", ["session"], "readonly", (tx) =>
      tx.objectStore("session").get(ONLY),
    );
    return v === undefined ? undefined : checkStored(v, storedSessionSchema, "session");
  }

  async saveSession(session: StoredSession): Promise<void> {
    await this.#inTransaction("saving to", ["session"], "readwrite", (tx) =>
      tx.objectStore("session").put({ ...session }, ONLY),
    );
    this.#owner = sessionOwner(session);
  }

  async loadSync(): Promise<SyncSnapshot | undefined> {
    return this.#serially(async () => {
      this.#known.clear();
      const [session, token, mark, roomRecords, stateRecords, accountData] = await this.#inTransaction(
        "reading",
        [...SYNC_STORES, "session"],
        "readonly",
        (tx) =>
          Promise.all([
            tx.objectStore("session").get(ONLY),
            tx.objectStore("sync_token").get(ONLY),
            tx.objectStore("sync_token").get(WRITER),
            tx.objectStore("rooms").getAll(),
            tx.objectStore("room_state").getAll(),
            tx.objectStore("account_data").getAll(),
          ]),
      );
      this.#owner = sessionOwner(session);
      if (token === undefined) return undefined;
      if (typeof token !== "string" || token.length === 0) {
        throw new ClientError("STORE_CORRUPT", "client store: the sync token failed validation");
      }
      const stateOf = new Map<string, { i: number; event: unknown }[]>();
      for (const r of stateRecords as unknown[]) {
        const { roomId, i, event } = (typeof r === "object" && r !== null ? r : {}) as Record<
          string,
          unknown
        >;
        if (typeof roomId !== "string" || typeof i !== "number") {
          throw new ClientError("STORE_CORRUPT", "client store: room state failed validation");
        }
        let list = stateOf.get(roomId);
        if (list === undefined) {
          list = [];
          stateOf.set(roomId, list);
        }
        list.push({ i, event });
      }
      const rooms = (roomRecords as unknown[]).map((r: unknown) => {
        if (typeof r !== "object" || r === null || "state" in r) {
          // A snapshot kept whole (upgrade 2 left it): as before.
          return checkStored(r, roomSnapshotSchema, "room");
        }
        const roomId = (r as { roomId?: unknown }).roomId;
        const records = typeof roomId === "string" ? (stateOf.get(roomId) ?? []) : [];
        stateOf.delete(roomId as string);
        records.sort((a, b) => a.i - b.i);
        const room = checkStored({ ...r, state: records.map((s) => s.event) }, roomSnapshotSchema, "room");
        this.#known.set(room.roomId, indexState(room.state));
        return room;
      });
      if (stateOf.size > 0) {
        this.#known.clear();
        throw new ClientError("STORE_CORRUPT", "client store: room state of no stored room");
      }
      this.#mark = mark;
      return {
        nextBatch: token,
        rooms,
        accountData: accountData.map((e: unknown) => checkStored(e, basicEventSchema, "account data")),
      };
    });
  }

  /**
   * One transaction with the token. A room's state events are written when new, changed (another
   * object: the client replaces a state event, never changes one) or moved, and deleted when gone,
   * against what this connection last saved or loaded of the room; a room it has not seen yet
   * has its state rewritten whole. A room whose snapshot has the frozen state array this
   * connection last saved (the client's while the state is unchanged) has nothing to compare.
   */
  async saveSync(changes: SyncChanges): Promise<void> {
    return this.#serially(async () => {
      const range = this.#keyRange ?? (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange;
      if (range === undefined) {
        throw new ClientError("INVALID_ARGUMENT", "IDBKeyRange is not available here; pass keyRange");
      }
      const next = new Map<string, StateIndex>();
      const mark = newWriterMark();
      // Written by someone else since (another tab): what this connection knew is no longer so.
      const lastMark = this.#mark;
      this.#mark = undefined;
      // A failure aborts the transaction (#inTransaction): a request refused as it was made (a
      // value IndexedDB cannot hold; in Chromium, a value past its size limit aborts the
      // transaction, and the next request throws) leaves none made before it to commit without
      // the token. The transaction's own error says why (e.g. Chromium's "value too large").
      await this.#inTransaction("saving to", [...SYNC_STORES, "session"], "readwrite", async (tx) => {
        const [storedMark, session] = await Promise.all([
          tx.objectStore("sync_token").get(WRITER),
          tx.objectStore("session").get(ONLY),
        ]);
        if (storedMark !== lastMark || lastMark === undefined) this.#known.clear();
        if (this.#owner !== undefined && sessionOwner(session) !== this.#owner) {
          // Another tab's session, or none: this one's rooms and position must not end up in it.
          throw new ClientError(
            "NOT_LOGGED_IN",
            `client store "${this.name}" no longer holds this session (another tab logged in or out): nothing saved`,
          );
        }
        const requests: Promise<unknown>[] = [];
        try {
          const rooms = tx.objectStore("rooms");
          const state = tx.objectStore("room_state");
          for (const r of changes.rooms) {
            const { state: events, ...rest } = r;
            requests.push(rooms.put(rest satisfies Omit<RoomSnapshot, "state">, r.roomId));
            const known = this.#known.get(r.roomId);
            if (known !== undefined && this.#arrayOf.get(known) === events) {
              next.set(r.roomId, known);
              continue;
            }
            // Cleared before the loop can throw, so that a failure leaves this room to be rewritten whole.
            this.#known.delete(r.roomId);
            if (known === undefined) requests.push(state.delete(roomStateRange(range, r.roomId)));
            const index: StateIndex = new Map();
            events.forEach((event, i) => {
              const k = stateKeyOf(event.type, event.state_key);
              index.set(k, { i, event });
              const was = known?.get(k);
              if (was?.event !== event || was.i !== i) {
                requests.push(
                  state.put({ roomId: r.roomId, i, event }, [r.roomId, event.type, event.state_key]),
                );
              }
            });
            if (known !== undefined) {
              for (const [k, { event }] of known) {
                if (!index.has(k)) requests.push(state.delete([r.roomId, event.type, event.state_key]));
              }
            }
            next.set(r.roomId, index);
            if (Object.isFrozen(events)) this.#arrayOf.set(index, events);
          }
          for (const roomId of changes.forgotten ?? []) {
            this.#known.delete(roomId);
            requests.push(rooms.delete(roomId), state.delete(roomStateRange(range, roomId)));
          }
          for (const e of changes.accountData) requests.push(tx.objectStore("account_data").put(e, e.type));
          requests.push(tx.objectStore("sync_token").put(changes.nextBatch, ONLY));
          requests.push(tx.objectStore("sync_token").put(mark, WRITER));
        } finally {
          // The transaction's end is the outcome: a request Chromium refused may never settle, and
          // the others fail with it (handled here, so that none rejects unhandled).
          for (const r of requests) r.catch(() => undefined);
        }
      });
      for (const [roomId, index] of next) this.#known.set(roomId, index);
      this.#mark = mark;
    });
  }

  async clear(): Promise<void> {
    return this.#serially(async () => {
      this.#known.clear();
      this.#mark = undefined;
      this.#owner = undefined;
      await this.#inTransaction("clearing", STORES, "readwrite", (tx) =>
        Promise.all(STORES.map((s) => tx.objectStore(s).clear())),
      );
    });
  }

  /**
   * One readwrite transaction over every object store that reads the session and clears: IndexedDB
   * runs transactions whose scopes overlap one at a time, across connections (tabs) too, so another
   * tab's `saveSession` or `saveSync` falls wholly before or after it, never between the check and
   * the clear.
   */
  async clearIf(ours: (stored: StoredSession | undefined) => boolean): Promise<boolean> {
    return this.#serially(() =>
      this.#inTransaction("clearing", STORES, "readwrite", async (tx) => {
        const v: unknown = await tx.objectStore("session").get(ONLY);
        if (!ours(v === undefined ? undefined : checkStored(v, storedSessionSchema, "session"))) {
          return false;
        }
        this.#known.clear();
        this.#mark = undefined;
        this.#owner = undefined;
        await Promise.all(STORES.map((s) => tx.objectStore(s).clear()));
        return true;
      }),
    );
  }

  /**
   * One readwrite transaction over every object store (see `clearIf`) that reads the session,
   * clears the store when it holds another user's or device's, and saves: another tab's login
   * falls wholly before or after it.
   */
  async saveSessionIf(
    session: StoredSession,
    expected: (stored: StoredSession | undefined) => boolean,
  ): Promise<boolean> {
    return this.#serially(async () => {
      const saved = await this.#inTransaction("saving to", STORES, "readwrite", async (tx) => {
        const v: unknown = await tx.objectStore("session").get(ONLY);
        const stored = v === undefined ? undefined : checkStored(v, storedSessionSchema, "session");
        if (!expected(stored)) return false;
        if (stored !== undefined && sessionOwner(stored) !== sessionOwner(session)) {
          this.#known.clear();
          this.#mark = undefined;
          await Promise.all(STORES.map((s) => tx.objectStore(s).clear()));
        }
        await tx.objectStore("session").put({ ...session }, ONLY);
        return true;
      });
      if (saved) this.#owner = sessionOwner(session);
      return saved;
    });
  }

  /** Runs `task` after the calls before it have ended: `saveSync` diffs against what they saved. */
  #serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    this.#known.clear();
    this.#mark = undefined;
    this.#owner = undefined;
    if (db !== undefined) (await db.catch(() => undefined))?.close();
  }

  toJSON(): Record<string, unknown> {
    return { type: "IndexedDbClientStore", name: this.name };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `IndexedDbClientStore(${this.name})`;
  }
}
