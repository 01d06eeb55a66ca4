// The IndexedDB lease's generation, context by context on one database (Web Locks and
// BroadcastChannel stand-ins): taking the lease raises nothing, a hold's first save does, in the
// save's own transaction, and a context reloads (a stale grant, a message on the channel) exactly
// when another saved since it last held the store, saved or opened.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sample } from "../conformance.ts";
import { StoreLockedError } from "../errors.ts";
import type { IndexedDbCryptoStore } from "./idb-store.ts";
import { contexts } from "./test-support/contexts.ts";

/** The generation as stored, read over a connection of its own. */
async function generation(name: string): Promise<number> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const r = indexedDB.open(name);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  try {
    const v = await new Promise<unknown>((resolve, reject) => {
      const r = db.transaction("meta").objectStore("meta").get("lease_generation");
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    return typeof v === "number" ? v : 0;
  } finally {
    db.close();
  }
}

/** How many times each context was told (over the channel) that another changed the store. */
function heard(...stores: IndexedDbCryptoStore[]): number[] {
  const counts = stores.map(() => 0);
  stores.forEach((s, i) => {
    s.onChangedElsewhere(() => {
      counts[i] = (counts[i] ?? 0) + 1;
    });
  });
  return counts;
}

const stale = (e: unknown): boolean => e instanceof StoreLockedError && e.code === "STALE";

/** A save that fails inside its transaction, after the fence: an update of an unstored session. */
const failingSave = {
  nextBatch: "lost",
  outboundGroupSessionUpdates: [
    { roomId: "!r:x", sessionId: "o1", pickle: sample.outbound("!r:x", "o1", 7).pickle, messageCount: 8 },
  ],
};

describe("IndexedDB lease generation", () => {
  it("contexts that take turns without saving never make each other reload", async () => {
    const { name, open } = contexts();
    const [a, b] = [await open(), await open()];
    const told = heard(a, b);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await a.tryAcquireLease(1), { stale: false }, `a's turn ${i}`);
      assert.equal(await a.getNextBatch(), undefined, "reading is not saving");
      await a.releaseLease();
      assert.deepEqual(await b.tryAcquireLease(1), { stale: false }, `b's turn ${i}: a saved nothing`);
      await b.releaseLease();
    }
    assert.deepEqual(told, [0, 0]);
    assert.equal(await generation(name), 0, "no take raised it");
    // b's view is as new as anyone's: it may save outside the lease, and a then reloads.
    await b.saveChanges({ nextBatch: "s1" });
    assert.deepEqual(await a.tryAcquireLease(1), { stale: true });
    await a.releaseLease();
    await a.close();
    await b.close();
  });

  it("a hold that saved makes the other context reload once; the saver itself does not", async () => {
    const { open } = contexts();
    const [a, b] = [await open(), await open()];
    const told = heard(a, b);
    assert.ok(await a.tryAcquireLease(1));
    await a.saveChanges({ nextBatch: "s1" });
    await a.saveChanges({ nextBatch: "s2" });
    await a.releaseLease();
    assert.deepEqual(told, [0, 1], "b was told once, when a let go");
    assert.deepEqual(await b.tryAcquireLease(1), { stale: true }, "a saved since b last saw the store");
    assert.equal(await b.getNextBatch(), "s2");
    await b.releaseLease();
    assert.deepEqual(await a.tryAcquireLease(1), { stale: false }, "b saved nothing, a's own saves since");
    await a.releaseLease();
    assert.deepEqual(await b.tryAcquireLease(1), { stale: false }, "nobody saved since b's reload");
    await b.releaseLease();
    assert.deepEqual(told, [0, 1]);
    await a.close();
    await b.close();
  });

  it("the generation moves once per hold, at its first save, not at a take", async () => {
    const { name, open } = contexts();
    const [a, b] = [await open(), await open()];
    assert.ok(await a.tryAcquireLease(1));
    assert.equal(await generation(name), 0, "taking raised nothing");
    await a.saveChanges({ nextBatch: "s1" });
    assert.equal(await generation(name), 1, "raised by the hold's first save");
    await a.saveChanges({ nextBatch: "s2" });
    assert.deepEqual(await a.tryAcquireLease(1), { stale: false }, "taken again while held: the same hold");
    await a.saveChanges({ nextBatch: "s3" });
    assert.equal(await generation(name), 1, "not again in the same hold");
    await a.releaseLease();
    assert.ok(await b.tryAcquireLease(1));
    await b.releaseLease();
    assert.ok(await a.tryAcquireLease(1));
    assert.equal(await generation(name), 1);
    await a.saveChanges({ nextBatch: "s4" });
    assert.equal(await generation(name), 2, "a new hold raises it again at its first save");
    await a.releaseLease();
    await a.close();
    await b.close();
  });

  it("an aborted save raises nothing and moves nobody's view", async () => {
    const { name, open } = contexts();
    const [a, b] = [await open(), await open()];
    const told = heard(a, b);
    assert.ok(await a.tryAcquireLease(1));
    await assert.rejects(a.saveChanges(failingSave), /holds no stored session/);
    assert.equal(await generation(name), 0, "rolled back with the save");
    assert.equal(await a.getNextBatch(), undefined, "nothing was saved");
    await a.releaseLease();
    assert.deepEqual(told, [0, 0], "a hold whose save aborted tells no one");
    assert.deepEqual(await b.tryAcquireLease(1), { stale: false });
    await b.releaseLease();
    assert.ok(await a.tryAcquireLease(1));
    await assert.rejects(a.saveChanges(failingSave), /holds no stored session/);
    await a.saveChanges({ nextBatch: "s1" });
    assert.equal(await generation(name), 1, "a's next save in the same hold still raises it");
    await a.releaseLease();
    assert.deepEqual(await b.tryAcquireLease(1), { stale: true });
    await b.releaseLease();
    // Outside the lease too.
    await assert.rejects(b.saveChanges(failingSave), /holds no stored session/);
    assert.equal(await generation(name), 1);
    assert.deepEqual(await a.tryAcquireLease(1), { stale: false });
    await a.releaseLease();
    await a.close();
    await b.close();
  });

  it("a context opened during a hold that saved reloads if and only if the holder saves again after", async () => {
    const { open } = contexts();
    const a = await open();
    assert.ok(await a.tryAcquireLease(1));
    await a.saveChanges({ nextBatch: "s1" });
    // c opens (and may read) while a holds the store and may save more under the same hold.
    const c = await open();
    const toldC = heard(c);
    assert.equal(await c.getNextBatch(), "s1");
    await a.saveChanges({ nextBatch: "s2" });
    await a.releaseLease();
    assert.deepEqual(toldC, [1]);
    assert.deepEqual(await c.tryAcquireLease(1), { stale: true }, "a saved after c opened");
    assert.equal(await c.getNextBatch(), "s2");
    await c.releaseLease();
    assert.ok(await a.tryAcquireLease(1));
    await a.saveChanges({ nextBatch: "s3" });
    const d = await open();
    const toldD = heard(d);
    await a.releaseLease();
    assert.deepEqual(
      [toldC, toldD],
      [[2], [0]],
      "a's release told c, not d, which opened after a's last save",
    );
    assert.deepEqual(await d.tryAcquireLease(1), { stale: false }, "a saved nothing after d opened");
    await d.releaseLease();
    for (const s of [a, c, d]) await s.close();
  });

  it("saves issued together go through: in a hold they raise the generation once, outside it once each", async () => {
    const { name, locks, open } = contexts();
    const [a, b] = [await open(), await open()];
    assert.ok(await a.tryAcquireLease(1));
    await Promise.all([1, 2, 3].map((i) => a.saveChanges({ nextBatch: `s${i}` })));
    assert.equal(await generation(name), 1);
    await a.releaseLease();
    assert.deepEqual(await b.tryAcquireLease(1), { stale: true });
    await b.releaseLease();
    await Promise.all([4, 5, 6].map((i) => b.saveChanges({ nextBatch: `s${i}` })));
    assert.equal(await generation(name), 4, "each save outside the lease is a hold of its own");
    assert.equal(await a.getNextBatch(), "s6", "in the order they were issued");
    assert.equal(locks.held.size, 0);
    assert.deepEqual(await b.tryAcquireLease(1), { stale: false });
    await b.releaseLease();
    await a.close();
    await b.close();
  });

  it("a save outside the lease is refused while another context holds it, allowed after a hold that saved nothing", async () => {
    const { locks, open } = contexts();
    const [a, b] = [await open(), await open()];
    assert.ok(await a.tryAcquireLease(1));
    // b is as up to date as a (a has saved nothing), but a holds the store.
    await assert.rejects(b.saveChanges({ nextBatch: "b1" }), stale);
    const c = await open(); // opened during a's hold
    await assert.rejects(c.saveChanges({ nextBatch: "c1" }), stale);
    assert.equal(await a.getNextBatch(), undefined, "nothing was saved");
    await a.saveChanges({ nextBatch: "a1" });
    await a.releaseLease();
    assert.deepEqual(await b.tryAcquireLease(1), { stale: true });
    await b.releaseLease();
    // a took the lease and let it go having saved nothing: b's view is still the store's.
    assert.ok(await a.tryAcquireLease(1));
    await a.releaseLease();
    await b.saveChanges({ nextBatch: "b2" });
    assert.equal(locks.held.size, 0, "the save held the lock for its transaction only");
    assert.deepEqual(await a.tryAcquireLease(1), { stale: true });
    assert.equal(await a.getNextBatch(), "b2");
    await a.releaseLease();
    assert.deepEqual(await b.tryAcquireLease(1), { stale: false }, "its own save");
    await b.releaseLease();
    for (const s of [a, b, c]) await s.close();
  });
});
