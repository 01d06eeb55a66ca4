// The engine on IndexedDB shared by two contexts (tabs, workers), in Node: fake-indexeddb for the
// database, stand-ins for Web Locks and BroadcastChannel (the real ones run in Chromium's tests).
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IndexedDbCryptoStore } from "../store/indexeddb/idb-store.ts";
import { FakeChannels, FakeLocks } from "../store/indexeddb/test-support/fakes.ts";
import { twoEnginesOnOneStore } from "./test-support/shared-store.ts";

describe("the machine on IndexedDB shared by two contexts", () => {
  it("two machines take turns through the Web Lock: a stale one reloads, or is refused", async () => {
    const locks = new FakeLocks();
    const channels = new FakeChannels();
    const name = `keyroom-shared-${process.pid}`;
    let told = 0;
    await twoEnginesOnOneStore(async () => {
      const store = await IndexedDbCryptoStore.open({
        userId: "@bob:x",
        deviceId: "B",
        name,
        locks,
        broadcast: channels.factory,
        kdfIterations: 1000,
      });
      store.onChangedElsewhere(() => told++);
      return store;
    });
    // Each context heard the other let go after its turns (the client reloads at once on that).
    assert.ok(told > 0);
    assert.equal(locks.held.size, 0);
  });
});
