/**
 * IndexedDB's own failures as the store's typed errors, as the SQLite store types SQLite's: a
 * connection the browser closed is `StoreError("CLOSED")`, anything else the back end refused (the
 * quota used up, an aborted transaction, an internal error) `StoreError("BACKEND")`. The original
 * is the `cause`. The message names the operation and the DOMException's name, never its message,
 * which may quote a key or a value. The client store (`src/client/client-store/idb-store.ts`) makes
 * its own error type from the same description (`idbFailure`).
 */
import { wrap } from "idb";
import { StoreError, StoreKeyError, StoreLockedError, StoreMismatchError } from "../errors.ts";

/** Why IndexedDB failed, by the DOMException's name (not all names are listed: see `idbError`). */
const REASONS: ReadonlyMap<string, string> = new Map([
  ["QuotaExceededError", "the origin's storage quota is used up"],
  ["AbortError", "its transaction was aborted"],
  ["UnknownError", "the browser's storage failed"],
  ["VersionError", "the database's version changed"],
  ["TransactionInactiveError", "its transaction ended early"],
  ["DataCloneError", "a value could not be stored"],
  ["DataError", "a key was refused"],
]);

/** A DOMException's name (from any realm), when `e` has one that looks like it. */
function errorName(e: unknown): string | undefined {
  const name = typeof e === "object" && e !== null ? (e as { name?: unknown }).name : undefined;
  return typeof name === "string" && /^[A-Z][A-Za-z]{0,40}Error$/.test(name) ? name : undefined;
}

/** What went wrong, for a store's own error: `CLOSED` (the connection) or `BACKEND` (anything else). */
export interface IdbFailure {
  readonly code: "CLOSED" | "BACKEND";
  /** Names `what` and the DOMException, never quotes its message. */
  readonly message: string;
}

/** `e`, thrown while `what` (e.g. `reading IndexedDB database "x"`), described for a store's error. */
export function idbFailure(e: unknown, what: string): IdbFailure {
  const name = errorName(e);
  if (name === "InvalidStateError") {
    // The connection is closed: the browser closed it (site data cleared, the backing store lost).
    return { code: "CLOSED", message: `${what} failed: the IndexedDB connection is closed (${name})` };
  }
  const reason = name === undefined ? undefined : REASONS.get(name);
  const because = reason === undefined ? "" : `: ${reason}`;
  return { code: "BACKEND", message: `${what} failed${because} (${name ?? "not an IndexedDB error"})` };
}

/**
 * The store's own errors pass through; anything else thrown while `what` (e.g. `reading IndexedDB
 * database "x"`) becomes a `StoreError` with `e` as its cause.
 */
export function idbError(e: unknown, what: string): Error {
  if (
    e instanceof StoreError ||
    e instanceof StoreKeyError ||
    e instanceof StoreLockedError ||
    e instanceof StoreMismatchError
  ) {
    return e;
  }
  const { code, message } = idbFailure(e, what);
  return new StoreError(code, message, { cause: e });
}

/**
 * idb keeps a promise of each transaction's end, rejected when it aborts, which its shortcut reads
 * (`db.get`…) never await: an abort would also reach the page as an unhandled rejection of the raw
 * DOMException (fatal in Node), beside the typed error the read throws. From now on, each
 * transaction of `raw` has that promise marked handled.
 */
export function handleTransactionEnds(raw: IDBDatabase): void {
  // The method the connection has now, if its own (a test's hook), else its prototype's at each call.
  const own = Object.hasOwn(raw, "transaction") ? raw.transaction : undefined;
  const proto = Object.getPrototypeOf(raw) as IDBDatabase;
  raw.transaction = (names, mode, options) => {
    const tx = (own ?? proto.transaction).call(raw, names, mode, options);
    wrap(tx).done.catch(() => {});
    return tx;
  };
}

/**
 * Settles as `tx` ends (call it before the transaction's first request): rejects with the error
 * that aborted it. A failed request's error event comes before the abort it causes sets
 * `tx.error` (null until then), so this waits for the abort; one by script has no error
 * (`AbortError`).
 */
export function transactionEnd(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.addEventListener("complete", () => resolve());
    tx.addEventListener("abort", () =>
      reject(tx.error ?? new DOMException("the transaction was aborted", "AbortError")),
    );
  });
}
