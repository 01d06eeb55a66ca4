import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { StoreError, StoreKeyError, StoreLockedError } from "../errors.ts";
import { IndexedDbCryptoStore } from "./idb-store.ts";
import { ALICE, DEVICE, newName } from "./test-support/contexts.ts";
import { FakeLocks } from "./test-support/fakes.ts";

const KDF = 1000;
/** Stores a test opened, closed after it even when it fails (an open one keeps the process alive). */
const opened: IndexedDbCryptoStore[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});
async function track(store: Promise<IndexedDbCryptoStore>): Promise<IndexedDbCryptoStore> {
  const s = await store;
  opened.push(s);
  return s;
}
const isKeyError = (code: string) => (e: unknown) => e instanceof StoreKeyError && e.code === code;

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** The stored key header, read straight from the database. */
async function headerOf(name: string): Promise<string> {
  const db = await req(indexedDB.open(name));
  try {
    return JSON.stringify(await req(db.transaction("meta").objectStore("meta").get("store_key")));
  } finally {
    db.close();
  }
}

async function opensWith(name: string, passphrase: string, locks: FakeLocks): Promise<void> {
  const store = await track(IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase, locks }));
  try {
    assert.equal(await store.getSecret("s"), "v");
  } finally {
    await store.close();
  }
}

async function newStore(name: string, locks: FakeLocks): Promise<IndexedDbCryptoStore> {
  const store = await track(
    IndexedDbCryptoStore.open({
      userId: ALICE,
      deviceId: DEVICE,
      name,
      passphrase: "old",
      kdfIterations: KDF,
      locks,
    }),
  );
  await store.saveChanges({ secrets: { s: "v" } });
  return store;
}

describe("IndexedDbCryptoStore.changePassphrase", () => {
  it("re-wraps the same store key: the new passphrase opens the records, the old one is WRONG_KEY", async () => {
    const name = newName();
    const locks = new FakeLocks();
    const store = await newStore(name, locks);
    const before = JSON.parse(await headerOf(name));
    await store.changePassphrase("old", "new", { kdfIterations: KDF });
    await store.saveChanges({ secrets: { t: "w" } });
    await store.close();
    assert.equal(locks.held.size, 0, "the change held the lock for its transaction only");
    const after = JSON.parse(await headerOf(name));
    assert.notEqual(after.salt, before.salt, "a fresh salt");
    await opensWith(name, "new", locks);
    await assert.rejects(
      track(IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "old", locks })),
      isKeyError("WRONG_KEY"),
    );
  });

  it("a wrong old passphrase, an empty new one or a store without a passphrase change nothing", async () => {
    const name = newName();
    const locks = new FakeLocks();
    const store = await newStore(name, locks);
    const header = await headerOf(name);
    await assert.rejects(store.changePassphrase("wrong", "new"), isKeyError("WRONG_KEY"));
    await assert.rejects(
      store.changePassphrase("old", ""),
      (e) => e instanceof StoreError && e.code === "BAD_OPTION",
    );
    assert.equal(await headerOf(name), header);
    await store.close();
    await opensWith(name, "old", locks);

    // The default browser store: a non-extractable Web Crypto key, no passphrase to change.
    const plain = await track(
      IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name: newName(), locks }),
    );
    await assert.rejects(plain.changePassphrase("", "new"), isKeyError("KEY_KIND_MISMATCH"));
    await plain.close();
  });

  it("takes the lease: refused (STALE) while another context holds it, allowed under one's own", async () => {
    const name = newName();
    const locks = new FakeLocks();
    const holder = await newStore(name, locks);
    const other = await track(IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "old", locks }));
    assert.ok(await holder.tryAcquireLease(60_000));
    const header = await headerOf(name);
    await assert.rejects(
      other.changePassphrase("old", "new", { kdfIterations: KDF }),
      (e) => e instanceof StoreLockedError && e.code === "STALE",
    );
    assert.equal(await headerOf(name), header);
    await holder.changePassphrase("old", "new", { kdfIterations: KDF });
    await holder.close();
    await other.close();
    await opensWith(name, "new", locks);
  });
});
