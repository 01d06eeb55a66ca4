// An IDBFactory (fake-indexeddb's `indexedDB`) with a hook run as one of the connections it opens
// starts its next transaction: what another tab does at that moment. Import "fake-indexeddb/auto" first.

export function hookedFactory(): { factory: IDBFactory; onNextTransaction: (f: () => void) => void } {
  let hook: (() => void) | undefined;
  const factory: IDBFactory = {
    open(name: string, version?: number) {
      const request = indexedDB.open(name, version);
      request.addEventListener("success", () => {
        const db = request.result;
        const transaction = db.transaction.bind(db);
        db.transaction = (
          names: string | string[],
          mode?: IDBTransactionMode,
          options?: IDBTransactionOptions,
        ) => {
          const tx = transaction(names, mode, options);
          const run = hook;
          hook = undefined;
          run?.();
          return tx;
        };
      });
      return request;
    },
    deleteDatabase: (name) => indexedDB.deleteDatabase(name),
    cmp: (a, b) => indexedDB.cmp(a, b),
    databases: () => indexedDB.databases(),
  };
  return {
    factory,
    onNextTransaction: (f: () => void) => {
      hook = f;
    },
  };
}
