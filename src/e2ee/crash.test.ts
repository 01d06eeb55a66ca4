/**
 * A process may die (or a save fail) at any point of a step. The store then holds the last complete
 * step, the sync token with it, so the client fetches the same sync again: nothing is lost, and
 * no one-time key is used twice.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CryptoChanges, type CryptoStore, MemoryCryptoStore, MemoryStoreData } from "../store/index.ts";
import { OlmMachine } from "./machine.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";

/** A store whose next `saveChanges` fails when `failNext` is set, like a crash mid-write. */
function failing(store: CryptoStore): { store: CryptoStore; failNext: () => void } {
  let fail = false;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "saveChanges") {
        return async (changes: CryptoChanges) => {
          if (fail) {
            fail = false;
            throw new Error("simulated crash");
          }
          return target.saveChanges(changes);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: proxy, failNext: () => (fail = true) };
}

describe("crash safety", () => {
  it("a sync whose save failed is processed again from scratch, without losing keys", async () => {
    for (let crashAt = 0; crashAt < 3; crashAt++) {
      const hs = new FakeHomeserver();
      const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
      const data = new MemoryStoreData();
      const inner = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B", data });
      const { store, failNext } = failing(inner);
      let bob = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
      hs.device("@bob:x", "B");
      for (const r of await bob.outgoingRequests())
        await bob.markRequestAsSent(r, hs.handle("@bob:x", "B", r));
      for (const r of await bob.outgoingRequests())
        await bob.markRequestAsSent(r, hs.handle("@bob:x", "B", r));
      const otksBefore = hs.device("@bob:x", "B").oneTimeKeys.size;

      const events = [];
      for (let i = 0; i < 3; i++) {
        events.push(await alice.sendMessage(`!room${i}:x`, joined("@alice:x", "@bob:x"), `m${i}`));
      }
      const sync = hs.syncFor("@bob:x", "B");
      // Deliver the sync in steps; the step number `crashAt` fails to save.
      const steps = sync.toDevice.map((e) => [e]);
      let delivered = 0;
      for (const [i, batch] of steps.entries()) {
        if (i === crashAt) {
          failNext();
          await assert.rejects(
            bob.receiveSyncChanges({ toDevice: batch, nextBatch: `t${i}` }),
            /simulated crash/,
          );
          // The process dies here; a new one opens the same store and fetches the same batch again.
          await bob.close();
          bob = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
        }
        const result = await bob.receiveSyncChanges({ toDevice: batch, nextBatch: `t${i}` });
        assert.equal(result.failures.length, 0, `step ${i} after crash at ${crashAt}`);
        delivered += result.roomKeys.length;
      }
      assert.equal(delivered, 3);
      for (const [i, event] of events.entries()) {
        assert.equal((await bob.decryptRoomEvent(event, `!room${i}:x`)).content.body, `m${i}`);
      }
      assert.equal(otksBefore - hs.device("@bob:x", "B").oneTimeKeys.size, 1, "one Olm session, one key");
      await bob.close();
    }
  });

  it("a failed save inside a step leaves the running machine consistent with the store", async () => {
    const hs = new FakeHomeserver();
    const alice = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A" });
    const inner = await MemoryCryptoStore.open({
      userId: "@bob:x",
      deviceId: "B",
      data: new MemoryStoreData(),
    });
    const { store, failNext } = failing(inner);
    const bob = await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store });
    hs.device("@bob:x", "B");
    for (let i = 0; i < 2; i++) {
      for (const r of await bob.outgoingRequests())
        await bob.markRequestAsSent(r, hs.handle("@bob:x", "B", r));
    }
    const event = await alice.sendMessage("!r:x", joined("@alice:x", "@bob:x"), "kept");
    const sync = hs.syncFor("@bob:x", "B");
    failNext();
    await assert.rejects(bob.receiveSyncChanges({ ...sync, nextBatch: "x1" }), /simulated crash/);
    // The same machine, without a restart, processes the re-fetched sync.
    const result = await bob.receiveSyncChanges({ ...sync, nextBatch: "x1" });
    assert.equal(result.roomKeys.length, 1);
    assert.equal((await bob.decryptRoomEvent(event, "!r:x")).content.body, "kept");
  });
});
