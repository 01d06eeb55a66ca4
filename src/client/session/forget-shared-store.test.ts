// A logout in one tab while another tab of the same origin saves its session into the same
// IndexedDB client store (fake-indexeddb: two connections to one database, as two tabs hold).
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ApiCall } from "../call.ts";
import { IndexedDbClientStore } from "../client-store/idb-store.ts";
import type { StoredSession } from "../client-store/store.ts";
import { hookedFactory } from "../test-support/hooked-idb.ts";
import { Session } from "./session.ts";

const HS = "https://hs";
const noCall: ApiCall = async () => {
  throw new Error("no server in this test");
};
const session = (userId: string, deviceId: string, accessToken: string): StoredSession => ({
  homeserverUrl: HS,
  userId,
  deviceId,
  accessToken,
});

let n = 0;
const dbName = () => `forget-shared-store-${process.pid}-${n++}`;

describe("Session.forget on an IndexedDB store shared by two tabs", () => {
  const cases = [
    {
      what: "tab 2 logs in again on the device (a new token) as tab 1 logs its old token out",
      theirs: session("@alice:hs", "DEV1", "tok2"),
      deviceGone: false,
    },
    {
      what: "tab 2 logs in as another account as tab 1's logout deletes its device",
      theirs: session("@bob:hs", "BOBDEV", "tok3"),
      deviceGone: true,
    },
  ];
  for (const { what, theirs, deviceGone } of cases) {
    it(`keeps the session another tab saves while the forget runs: ${what}`, async () => {
      const name = dbName();
      const hooked = hookedFactory();
      const tab1Store = new IndexedDbClientStore({ name, indexedDB: hooked.factory });
      const tab2Store = new IndexedDbClientStore({ name });
      const tab1 = new Session({ call: noCall, store: tab1Store, homeserverUrl: HS });
      await tab1.adopt(session("@alice:hs", "DEV1", "tok1"), true);
      await tab2Store.loadSession(); // tab 2's connection is open
      // Tab 2 saves its session the moment tab 1's forget starts on the store: before, the forget
      // read the session (its own), tab 2's save landed, then the forget cleared it.
      let saved: Promise<void> | undefined;
      hooked.onNextTransaction(() => {
        saved = tab2Store.saveSession(theirs);
      });
      await tab1.forget(deviceGone);
      assert.ok(saved !== undefined, "tab 2 saved while tab 1 forgot");
      await saved;
      const reader = new IndexedDbClientStore({ name });
      assert.deepEqual(await reader.loadSession(), theirs, "tab 2's session is kept");
      assert.equal(tab1.current, undefined);
      await Promise.all([tab1Store.close(), tab2Store.close(), reader.close()]);
    });
  }

  it("still clears the store when it holds the session forgotten, or none", async () => {
    for (const stored of [true, false]) {
      const name = dbName();
      const store = new IndexedDbClientStore({ name });
      const tab = new Session({ call: noCall, store, homeserverUrl: HS });
      await tab.adopt(session("@alice:hs", "DEV1", "tok1"), true);
      await store.saveSync({ nextBatch: "s1", rooms: [], accountData: [] });
      if (!stored) {
        // Another tab logged out, and a connection that knew no session saved a position since.
        const other = new IndexedDbClientStore({ name });
        await other.clear();
        await other.saveSync({ nextBatch: "s2", rooms: [], accountData: [] });
        await other.close();
      }
      assert.notEqual(await store.loadSync(), undefined);
      await tab.forget(false);
      assert.equal(await store.loadSession(), undefined);
      assert.equal(await store.loadSync(), undefined);
      await store.close();
    }
  });
});
