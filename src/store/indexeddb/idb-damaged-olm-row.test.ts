// One Olm session row that fails authentication: `getOlmSessions` throws TAMPERED, or, given
// `unreadable`, returns the device's other sessions and names the damaged one there.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sample } from "../conformance.ts";
import { StoreKeyError } from "../errors.ts";
import { IndexedDbCryptoStore } from "./idb-store.ts";
import { ALICE, DEVICE, newName } from "./test-support/contexts.ts";

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

describe("IndexedDbCryptoStore: a damaged Olm session row", () => {
  it("is left out and named in `unreadable`; without it, the read is TAMPERED", async () => {
    const name = newName();
    let store = await IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name });
    await store.saveChanges({ olmSessions: [sample.olm("k1", "s1"), sample.olm("k1", "s2")] });
    await store.close();
    const db = await req(indexedDB.open(name));
    const tx = db.transaction("olm_sessions", "readwrite");
    const row = (await req(tx.objectStore("olm_sessions").get(["k1", "s1"]))) as Record<string, unknown>;
    tx.objectStore("olm_sessions").put({ ...row, pickle: "garbage" });
    await new Promise((resolve) => {
      tx.oncomplete = resolve;
    });
    db.close();
    store = await IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name });
    await assert.rejects(
      store.getOlmSessions("k1"),
      (e) => e instanceof StoreKeyError && e.code === "TAMPERED",
    );
    const unreadable: string[] = [];
    assert.deepEqual(await store.getOlmSessions("k1", unreadable), [sample.olm("k1", "s2")]);
    assert.deepEqual(unreadable, ["s1"]);
    await store.close();
  });
});
