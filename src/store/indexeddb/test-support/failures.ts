// IndexedDB failing as browsers make it fail, for tests in Node on fake-indexeddb: a connection
// closed behind the store's back (site data cleared), a transaction the browser aborts (the quota
// used up), a request that throws (an internal error). Import "fake-indexeddb/auto" first.

/** An IDBFactory that keeps the connections it opens, so that a test can close them. */
export function keepingConnections(factory: IDBFactory = indexedDB): {
  factory: IDBFactory;
  connections: IDBDatabase[];
} {
  const connections: IDBDatabase[] = [];
  const kept: IDBFactory = {
    open(name: string, version?: number) {
      const request = factory.open(name, version);
      request.addEventListener("success", () => connections.push(request.result));
      return request;
    },
    deleteDatabase: (name) => factory.deleteDatabase(name),
    cmp: (a, b) => factory.cmp(a, b),
    databases: () => factory.databases(),
  };
  return { factory: kept, connections };
}

/** What goes wrong at each request the patched methods make. */
export type RequestFailure =
  /** The browser aborts the request's transaction with this error (a QuotaExceededError, say). */
  | { readonly abortWith: DOMException }
  /** The request method throws this. */
  | { readonly throws: DOMException }
  /**
   * (Writes.) Each put is an add: over a stored record, its request fails after the call returned
   * (ConstraintError), as a browser's disk or quota failure of one request does, and that aborts
   * the transaction.
   */
  | { readonly failsLater: true };

const READ_METHODS = [
  "get",
  "getAll",
  "getAllKeys",
  "getKey",
  "count",
  "openCursor",
  "openKeyCursor",
] as const;
const WRITE_METHODS = ["put", "add", "delete", "clear"] as const;
type Patched = (typeof READ_METHODS)[number] | (typeof WRITE_METHODS)[number];

/** Aborts `tx` as the browser does on its own: `error` says why (an abort by script leaves none). */
export function abortWith(tx: IDBTransaction, error: DOMException): void {
  if (Object.getOwnPropertyDescriptor(tx, "error")?.get !== undefined) return; // aborted already
  Object.defineProperty(tx, "error", { get: () => error, set: () => {}, configurable: true });
  tx.abort();
}

/**
 * Makes every read (`"read"`: get, getAll, count…, on object stores and indexes) or every write
 * (`"write"`: put, add, delete, clear) fail as `failure` says, until the returned function is called.
 */
export function failRequests(kind: "read" | "write", failure: RequestFailure): () => void {
  const restore: (() => void)[] = [];
  const add = IDBObjectStore.prototype.add;
  const methods: readonly Patched[] = kind === "read" ? READ_METHODS : WRITE_METHODS;
  for (const proto of [IDBObjectStore.prototype, IDBIndex.prototype] as Record<Patched, unknown>[]) {
    for (const method of methods) {
      const original = proto[method];
      if (typeof original !== "function") continue;
      proto[method] = function (this: IDBObjectStore | IDBIndex, ...args: unknown[]) {
        if ("throws" in failure) throw failure.throws;
        if ("failsLater" in failure) {
          const put = method === "put" && this instanceof IDBObjectStore;
          return (put ? add : original).apply(this, args);
        }
        const request = original.apply(this, args) as IDBRequest;
        const tx = "transaction" in this ? this.transaction : this.objectStore.transaction;
        // As a browser does: after the requests made in this task, before any is answered.
        queueMicrotask(() => abortWith(tx, failure.abortWith));
        return request;
      };
      restore.push(() => {
        proto[method] = original;
      });
    }
  }
  return () => {
    for (const r of restore) r();
  };
}
