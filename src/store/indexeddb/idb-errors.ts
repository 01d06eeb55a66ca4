/**
 * IndexedDB's own failures as the store's typed errors, as the SQLite store types SQLite's: a
 * connection the browser closed is `StoreError("CLOSED")`, anything else the back end refused (the
 * quota used up, an aborted transaction, an internal error) `StoreError("BACKEND")`. The original
 * is the `cause`. The message names the operation and the DOMException's name, never its message,
 * which may quote a key or a value.
 */
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
  const name = errorName(e);
  if (name === "InvalidStateError") {
    // The connection is closed: the browser closed it (site data cleared, the backing store lost).
    return new StoreError("CLOSED", `${what} failed: the IndexedDB connection is closed (${name})`, {
      cause: e,
    });
  }
  const reason = name === undefined ? undefined : REASONS.get(name);
  const because = reason === undefined ? "" : `: ${reason}`;
  return new StoreError("BACKEND", `${what} failed${because} (${name ?? "not an IndexedDB error"})`, {
    cause: e,
  });
}
