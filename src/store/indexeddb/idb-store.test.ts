import "fake-indexeddb/auto";
import { runCryptoStoreConformance } from "../conformance.ts";
import { IndexedDbCryptoStore } from "./idb-store.ts";

let n = 0;

runCryptoStoreConformance({
  name: "indexeddb (fake-indexeddb)",
  encrypted: true,
  shared: true,
  // fake-indexeddb is a pure-JS reference implementation (about 12 s per 100 000 rows here);
  // the 100 000-row import runs against SQLite and memory.
  bulkCount: 25_000,
  async createFixture() {
    const name = `conformance-${process.pid}-${n++}`;
    return {
      open: (o) => IndexedDbCryptoStore.open({ ...o, name, kdfIterations: 1000 }),
      cleanup: async () => {
        await new Promise<void>((resolve) => {
          const req = indexedDB.deleteDatabase(name);
          req.onsuccess = () => resolve();
          req.onerror = () => resolve();
        });
      },
    };
  },
});
