import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rowAd, StoreCipher } from "../cipher/store-cipher.ts";
import { sample } from "../conformance.ts";
import { StoreError, StoreKeyError, StoreLockedError, StoreMismatchError } from "../errors.ts";
import { MAX_STORED_WITHHELD } from "../store.ts";
import { accountToJson } from "../validate.ts";
import { IndexedDbCryptoStore } from "./idb-store.ts";
import { ALICE, contexts, DEVICE, newName } from "./test-support/contexts.ts";
import { FakeLocks } from "./test-support/fakes.ts";
import { IDB_SCHEMA_VERSION, upgradeIdb } from "./upgrades.ts";

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

describe("IndexedDbCryptoStore", () => {
  it("binds the account to the identity: one rewritten in the database is TAMPERED at open; an older account still opens", async () => {
    const name = newName();
    const store = await IndexedDbCryptoStore.open({
      userId: ALICE,
      deviceId: DEVICE,
      name,
      passphrase: "pw",
      kdfIterations: 1000,
    });
    await store.saveChanges({ account: sample.account(0) });
    await store.close();
    const refused = async (): Promise<void> => {
      // Closed if it opens after all, so a failure does not leave the test hanging.
      const opened = await IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "pw" }).then(
        async (s) => s.close(),
        (e: unknown) => e,
      );
      assert.ok(opened instanceof StoreKeyError && opened.code === "TAMPERED", String(opened));
    };
    const put = async (value: unknown, key: string): Promise<void> => {
      const db = await req(indexedDB.open(name));
      const tx = db.transaction("meta", "readwrite");
      tx.objectStore("meta").put(value, key);
      await new Promise((resolve) => {
        tx.oncomplete = resolve;
      });
      db.close();
    };
    // Another of Alice's device IDs, for restoreDeviceId (no device ID asked for) to log in as.
    await put({ userId: ALICE, deviceId: "OTHERDEVICE" }, "identity");
    await refused();
    // An account sealed before it was bound to the identity (as older Keyroom did) still opens.
    await put({ userId: ALICE, deviceId: DEVICE }, "identity");
    const db = await req(indexedDB.open(name));
    const header: unknown = await req(db.transaction("meta").objectStore("meta").get("store_key"));
    db.close();
    const cipher = await StoreCipher.unlock(header, { kind: "passphrase", passphrase: "pw" });
    await put(cipher.encrypt(accountToJson(sample.account(1)), rowAd("account")), "account");
    const reopened = await IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "pw" });
    assert.deepEqual(await reopened.loadAccount(), sample.account(1));
    await reopened.saveChanges({ account: sample.account(2) });
    await reopened.close();
    // Saved again, it is bound too.
    await put({ userId: ALICE, deviceId: "OTHERDEVICE" }, "identity");
    await refused();
  });

  it("upgrades a version 1 database, keeping its data", async () => {
    const name = newName();
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = (e) => {
      if (open.transaction) upgradeIdb(open.result, open.transaction, e.oldVersion, 1);
    };
    const db = await req(open);
    assert.equal(db.objectStoreNames.contains("room_settings"), false);
    const { cipher, header } = await StoreCipher.create({
      kind: "passphrase",
      passphrase: "pw",
      iterations: 1000,
    });
    const rec = sample.inbound("!old:x", "legacy");
    const out = sample.outbound("!old:x", "o-legacy", 7);
    const tx = db.transaction(["meta", "inbound_group_sessions", "outbound_group_sessions"], "readwrite");
    // Before version 4 an outbound session's device lists shared its row.
    tx.objectStore("outbound_group_sessions").put({
      ...out,
      pickle: cipher.encrypt(out.pickle, rowAd("outbound", out.roomId)),
    });
    tx.objectStore("meta").put({ userId: ALICE, deviceId: DEVICE }, "identity");
    tx.objectStore("meta").put(header, "store_key");
    tx.objectStore("inbound_group_sessions").put({
      ...rec,
      backedUp: 0,
      pickle: cipher.encrypt(rec.pickle, rowAd("inbound", rec.roomId, rec.sessionId)),
    });
    await new Promise((resolve) => {
      tx.oncomplete = resolve;
    });
    db.close();

    const store = await IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "pw" });
    assert.deepEqual(await store.getInboundGroupSession("!old:x", "legacy"), rec);
    // The v2 index over rows written by v1.
    assert.deepEqual(await store.getInboundGroupSessionsToBackUp(5), [rec]);
    assert.deepEqual(await store.getOutboundGroupSession("!old:x"), out);
    await store.saveChanges({
      outboundGroupSessionUpdates: [
        {
          roomId: "!old:x",
          sessionId: "o-legacy",
          pickle: out.pickle,
          messageCount: 8,
          addSharedWith: { "@carol:x": { CAROL: 7 } },
        },
      ],
    });
    assert.deepEqual(await store.getOutboundGroupSession("!old:x"), {
      ...out,
      messageCount: 8,
      sharedWith: { ...out.sharedWith, "@carol:x": { CAROL: 7 } },
    });
    await store.saveChanges({ roomSettings: [{ roomId: "!old:x", algorithm: "m.megolm.v1.aes-sha2" }] });
    assert.ok(await store.getRoomSettings("!old:x"));
    await store.close();
    const check = await req(indexedDB.open(name));
    assert.equal(check.version, IDB_SCHEMA_VERSION);
    check.close();
  });

  it("upgrades a version 4 database: withheld notices and Olm hashes kept, numbered, and bounded from then on", async () => {
    const name = newName();
    const open = indexedDB.open(name, 4);
    open.onupgradeneeded = (e) => {
      if (open.transaction) upgradeIdb(open.result, open.transaction, e.oldVersion, 4);
    };
    const db = await req(open);
    const { header } = await StoreCipher.create({ kind: "passphrase", passphrase: "pw", iterations: 1000 });
    const notice = (sessionId: string) => ({
      roomId: "!old:x",
      sessionId,
      code: "m.unverified",
      sender: "@bob:x",
    });
    const tx = db.transaction(["meta", "withheld", "olm_message_hashes"], "readwrite");
    tx.objectStore("meta").put({ userId: ALICE, deviceId: DEVICE }, "identity");
    tx.objectStore("meta").put(header, "store_key");
    // Version 4 kept no order: the upgrade numbers rows in key order (w-a, w-b, w-c).
    for (const id of ["w-c", "w-a", "w-b"]) tx.objectStore("withheld").put(notice(id));
    for (const hash of ["h-b", "h-a"])
      tx.objectStore("olm_message_hashes").put({ senderKey: "curveOld", hash });
    await new Promise((resolve) => {
      tx.oncomplete = resolve;
    });
    db.close();

    const store = await IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "pw" });
    // Closed however the checks end (an open store keeps the test process alive).
    try {
      assert.deepEqual(await store.getWithheld("!old:x", "w-a"), notice("w-a"));
      assert.ok(await store.isOlmMessageKnown("curveOld", "h-a"));
      assert.ok(await store.isOlmMessageKnown("curveOld", "h-b"));
      // Saved again: the new value, same place.
      await store.saveChanges({ withheld: [{ ...notice("w-a"), code: "m.blacklisted" }] });
      assert.equal((await store.getWithheld("!old:x", "w-a"))?.code, "m.blacklisted");
      // Filled to the bound: the old rows give way in their order, no other.
      const fresh = Array.from({ length: MAX_STORED_WITHHELD - 2 }, (_, i) => notice(`new-${i}`));
      await store.saveChanges({ withheld: fresh });
      assert.equal(await store.getWithheld("!old:x", "w-a"), undefined);
      assert.notEqual(await store.getWithheld("!old:x", "w-b"), undefined);
      await store.saveChanges({ withheld: [notice("one-more")] });
      assert.equal(await store.getWithheld("!old:x", "w-b"), undefined);
      assert.notEqual(await store.getWithheld("!old:x", "w-c"), undefined);
      // Hashes: numbered the same way, new ones after the old (their bound is the conformance
      // suite's: 100 000 rows cost fake-indexeddb ~15 s more here).
      await store.saveChanges({
        olmMessageHashes: [
          { senderKey: "curveNew", hash: "n" },
          { senderKey: "curveOld", hash: "h-a" },
        ],
      });
    } finally {
      await store.close();
    }
    const check = await req(indexedDB.open(name));
    assert.equal(check.version, IDB_SCHEMA_VERSION);
    const read = check.transaction(["withheld", "olm_message_hashes"]);
    assert.equal(await req(read.objectStore("withheld").count()), MAX_STORED_WITHHELD);
    const bySeq: unknown[] = await req(read.objectStore("olm_message_hashes").index("seq").getAll());
    assert.deepEqual(bySeq, [
      { senderKey: "curveOld", hash: "h-a", seq: 1 },
      { senderKey: "curveOld", hash: "h-b", seq: 2 },
      { senderKey: "curveNew", hash: "n", seq: 3 },
    ]);
    check.close();
  });

  it("upgrades a version 5 database: tracked users kept, none marked as a sender only; marks kept from then on", async () => {
    const name = newName();
    const open = indexedDB.open(name, 5);
    open.onupgradeneeded = (e) => {
      if (open.transaction) upgradeIdb(open.result, open.transaction, e.oldVersion, 5);
    };
    const db = await req(open);
    const { header } = await StoreCipher.create({ kind: "passphrase", passphrase: "pw", iterations: 1000 });
    const tx = db.transaction(["meta", "tracked_users"], "readwrite");
    tx.objectStore("meta").put({ userId: ALICE, deviceId: DEVICE }, "identity");
    tx.objectStore("meta").put(header, "store_key");
    tx.objectStore("tracked_users").put({ userId: "@bob:x", outdated: true });
    // Not written by version 5 (it kept no mark), but would not be trusted if it were.
    tx.objectStore("tracked_users").put({ userId: "@carol:x", outdated: false, senderOrder: 3 });
    await new Promise((resolve) => {
      tx.oncomplete = resolve;
    });
    db.close();

    const reopen = () => IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "pw" });
    let store = await reopen();
    try {
      assert.deepEqual(await store.getTrackedUsers(), [
        { userId: "@bob:x", outdated: true },
        { userId: "@carol:x", outdated: false },
      ]);
      await store.saveChanges({ trackedUsers: [{ userId: "@spam:evil", outdated: true, senderOrder: 1 }] });
      await store.close();
      store = await reopen();
      assert.deepEqual(await store.getTrackedUsers(), [
        { userId: "@bob:x", outdated: true },
        { userId: "@carol:x", outdated: false },
        { userId: "@spam:evil", outdated: true, senderOrder: 1 },
      ]);
    } finally {
      await store.close();
    }
    const check = await req(indexedDB.open(name));
    assert.equal(check.version, IDB_SCHEMA_VERSION);
    check.close();
  });

  it("reports an older connection that blocks the upgrade as StoreLockedError", async () => {
    const name = newName();
    const old = indexedDB.open(name, 1);
    old.onupgradeneeded = (e) => {
      if (old.transaction) upgradeIdb(old.result, old.transaction, e.oldVersion, 1);
    };
    const oldDb = await req(old); // stays open and ignores versionchange
    await assert.rejects(
      IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name }),
      (e) => e instanceof StoreLockedError && e.code === "LOCKED",
    );
    oldDb.close();
    const store = await IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name });
    await store.close();
  });

  it("once a newer Keyroom elsewhere upgrades the database (or a logout deletes it), reads, saves and takes refuse with StoreError CLOSED", async () => {
    for (const other of ["upgrade", "delete"] as const) {
      const { locks, open, name } = contexts();
      const store = await open();
      await store.saveChanges({ nextBatch: "s1" });
      // Another tab: its open (or delete) asks this connection to close, and it does.
      if (other === "upgrade") (await req(indexedDB.open(name, IDB_SCHEMA_VERSION + 1))).close();
      else await req(indexedDB.deleteDatabase(name));
      const closed = (e: unknown) => e instanceof StoreError && e.code === "CLOSED";
      await assert.rejects(store.getNextBatch(), closed);
      await assert.rejects(store.saveChanges({ nextBatch: "s2" }), closed);
      await assert.rejects(store.tryAcquireLease(1000), closed);
      assert.equal(locks.held.size, 0, "no lock left taken");
      await store.close();
    }
  });

  it("a transaction aborted while a new store is created (the quota reached) fails open with StoreError BACKEND, leaving no half store", async () => {
    const name = newName();
    const proto = IDBObjectStore.prototype;
    const put = proto.put;
    // The browser aborts the transaction that writes the new store's key (QuotaExceededError).
    proto.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore["put"]>) {
      const request = put.apply(this, args);
      if (args[1] === "store_key") request.addEventListener("success", () => this.transaction.abort());
      return request;
    };
    try {
      await assert.rejects(
        IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name }),
        (e) => e instanceof StoreError && e.code === "BACKEND",
      );
    } finally {
      proto.put = put;
    }
    const store = await IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name });
    assert.deepEqual(await store.loadIdentity(), { userId: ALICE, deviceId: DEVICE });
    await store.close();
  });

  it("upgrades a version 6 database: its data kept; rival room keys kept from then on, their pickles sealed", async () => {
    const name = newName();
    const open = indexedDB.open(name, 6);
    open.onupgradeneeded = (e) => {
      if (open.transaction) upgradeIdb(open.result, open.transaction, e.oldVersion, 6);
    };
    const db = await req(open);
    assert.equal(db.objectStoreNames.contains("rival_room_keys"), false);
    const { header } = await StoreCipher.create({ kind: "passphrase", passphrase: "pw", iterations: 1000 });
    const tx = db.transaction(["meta", "tracked_users"], "readwrite");
    tx.objectStore("meta").put({ userId: ALICE, deviceId: DEVICE }, "identity");
    tx.objectStore("meta").put(header, "store_key");
    tx.objectStore("tracked_users").put({ userId: "@bob:x", outdated: true });
    await new Promise((resolve) => {
      tx.oncomplete = resolve;
    });
    db.close();

    const rival = { ...sample.rival("!r:x", "g1", "curveRival"), sharedHistory: true };
    let store = await IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "pw" });
    try {
      assert.deepEqual(await store.getTrackedUsers(), [{ userId: "@bob:x", outdated: true }]);
      assert.deepEqual(await store.getRivalRoomKeys(), []);
      await store.saveChanges({ rivalRoomKeys: [rival] });
    } finally {
      await store.close();
    }
    const check = await req(indexedDB.open(name));
    assert.equal(check.version, IDB_SCHEMA_VERSION);
    const rows: unknown[] = await req(
      check.transaction("rival_room_keys").objectStore("rival_room_keys").getAll(),
    );
    check.close();
    const text = JSON.stringify(rows);
    assert.ok(!text.includes("rival-g1"), "the rival's pickle is stored in clear");
    assert.ok(text.includes("curveRival"), "lookup fields stay in clear");
    store = await IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "pw" });
    try {
      assert.deepEqual(await store.getRivalRoomKeys(), [rival]);
    } finally {
      await store.close();
    }
  });

  it("stores pickles, secrets and queued bodies sealed, lookup fields in clear", async () => {
    const name = newName();
    const store = await IndexedDbCryptoStore.open({
      userId: ALICE,
      deviceId: DEVICE,
      name,
      passphrase: "pw",
      kdfIterations: 1000,
    });
    await store.saveChanges({
      inboundGroupSessions: [sample.inbound("!r:x", "g1")],
      secrets: { s: "c2VjcmV0LXZhbHVl" },
      queuedRequests: [sample.queued("q1", 1)],
      account: sample.account(0),
    });
    await store.close();
    const db = await req(indexedDB.open(name));
    const tx = db.transaction(["inbound_group_sessions", "secrets", "queued_requests", "meta"]);
    const rows = [
      await req(tx.objectStore("inbound_group_sessions").get(["!r:x", "g1"])),
      await req(tx.objectStore("secrets").get("s")),
      await req(tx.objectStore("queued_requests").get("q1")),
      await req(tx.objectStore("meta").get("account")),
    ];
    db.close();
    const text = JSON.stringify(rows);
    for (const needle of ["inbound-g1", "c2VjcmV0LXZhbHVl", "BOBPHONE", "account-0"]) {
      assert.ok(!text.includes(needle), `${needle} is stored in clear`);
    }
    assert.ok(text.includes("!r:x"), "lookup fields stay in clear");
  });

  it("waits for the disk ('strict') on every commit but the per-message ones: browsers default to 'relaxed'", async () => {
    const store = await IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name: newName() });
    const asked: (string | undefined)[] = [];
    const transaction = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (
      this: IDBDatabase,
      names: string | string[],
      mode?: IDBTransactionMode,
      options?: IDBTransactionOptions,
    ) {
      if (mode === "readwrite") asked.push(options?.durability);
      return transaction.call(this, names, mode, options);
    };
    try {
      await store.saveChanges({ inboundGroupSessions: [sample.inbound("!r:x", "g1")] });
      await store.saveChanges({ account: sample.account(0), nextBatch: "s1" });
      const replay = { roomId: "!r:x", sessionId: "g1", messageIndex: 1, eventId: "$e", timestamp: 0 };
      await store.saveChanges({ replays: [replay], nextBatch: "s2" });
    } finally {
      IDBDatabase.prototype.transaction = transaction;
      await store.close();
    }
    assert.deepEqual(asked, ["strict", "strict", "relaxed"]);
  });

  it("refuses a database from a newer Keyroom", async () => {
    const name = newName();
    (await req(indexedDB.open(name, IDB_SCHEMA_VERSION + 1))).close();
    await assert.rejects(
      IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name }),
      (e) => e instanceof StoreError && e.code === "SCHEMA_TOO_NEW",
    );
  });

  it("leases over a Web Lock held only while working, and tells other contexts over a BroadcastChannel", async () => {
    const { locks, channels, name, open } = contexts();
    const lockName = `keyroom-crypto-store:${name}`;
    const tab1 = await open();
    const tab2 = await open(); // a second tab opens the same database: no lock is held at open
    assert.equal(locks.held.size, 0);
    let reloads = 0;
    tab2.onChangedElsewhere(() => reloads++);
    assert.deepEqual(await tab1.tryAcquireLease(1), { stale: false });
    assert.deepEqual([...locks.held], [lockName]);
    assert.equal(await tab2.tryAcquireLease(1), undefined, "another tab holds the Web Lock");
    assert.equal(await tab1.renewLease(1), true, "a Web Lock needs no renewal");
    await tab1.saveChanges({ nextBatch: "s1" });
    await tab1.releaseLease();
    assert.equal(locks.held.size, 0);
    assert.equal(reloads, 1, "tab2 heard that the store changed");
    assert.deepEqual(await tab2.tryAcquireLease(1), { stale: true });
    await tab2.saveChanges({ nextBatch: "s2" });
    await tab2.releaseLease();
    assert.equal(reloads, 1, "a context does not tell itself");
    // tab2 saved since tab1 last held the store: tab1's save outside the lease is refused.
    await assert.rejects(tab1.saveChanges({ nextBatch: "old" }), (e) => {
      assert.ok(e instanceof StoreLockedError);
      assert.equal(e.code, "STALE");
      return true;
    });
    await tab1.close();
    await tab2.close();
    assert.equal(channels.open, 0, "close closes the channel");
  });

  it("a context that took the lease only to catch up tells no one: idle tabs do not wake each other", async () => {
    const { open } = contexts();
    const [tab1, tab2] = [await open(), await open()];
    const heard = { tab1: 0, tab2: 0 };
    let catchUps: Promise<void>[] = [];
    // What a client does when told: take the lease (reloading if stale), then let it go.
    const catchUp = (store: IndexedDbCryptoStore, who: keyof typeof heard) => () => {
      heard[who] += 1;
      catchUps.push(
        (async () => {
          if (await store.tryAcquireLease(1)) await store.releaseLease();
        })(),
      );
    };
    tab1.onChangedElsewhere(catchUp(tab1, "tab1"));
    tab2.onChangedElsewhere(catchUp(tab2, "tab2"));
    assert.ok(await tab1.tryAcquireLease(1));
    await tab1.saveChanges({ nextBatch: "s1" });
    await tab1.releaseLease();
    for (let round = 0; round < 20 && catchUps.length > 0; round++) {
      const pending = catchUps;
      catchUps = [];
      await Promise.all(pending);
    }
    assert.deepEqual(heard, { tab1: 0, tab2: 1 });
    await tab1.close();
    await tab2.close();
  });

  it("without a passphrase wraps the store key with a non-extractable Web Crypto key; a passphrase is then refused", async () => {
    const name = newName();
    const store = await IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name });
    await store.saveChanges({ secrets: { s: "v" } });
    await store.close();
    const raw = await req(indexedDB.open(name));
    const tx = raw.transaction("meta");
    const header: unknown = await req(tx.objectStore("meta").get("store_key"));
    const wrapper: unknown = await req(tx.objectStore("meta").get("store_key_wrapper"));
    raw.close();
    assert.equal(StoreCipher.kindOf(header), "webcrypto");
    assert.ok(!JSON.stringify(header).includes("storeKey"));
    assert.ok(wrapper instanceof CryptoKey && !wrapper.extractable);
    const again = await IndexedDbCryptoStore.open({ userId: ALICE, name });
    assert.equal(await again.getSecret("s"), "v");
    await again.close();
    await assert.rejects(
      IndexedDbCryptoStore.open({ userId: ALICE, name, passphrase: "p" }),
      (e) => e instanceof StoreKeyError && e.code === "KEY_KIND_MISMATCH",
    );
  });
});

describe("IndexedDbCryptoStore created by two contexts at once", () => {
  for (const [label, extra] of [
    ["a Web Crypto wrapped key", {}],
    ["a passphrase", { passphrase: "pw", kdfIterations: 1000 }],
  ] as const) {
    it(`both open the one key the first wrote (${label}), and read each other's writes`, async () => {
      const name = newName();
      const locks = new FakeLocks();
      const open = () =>
        IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name, locks, ...extra });
      const [a, b] = await Promise.all([open(), open()]);
      const write = async (store: IndexedDbCryptoStore, key: string) => {
        assert.ok(await store.tryAcquireLease(1));
        await store.saveChanges({ secrets: { [key]: key } });
        await store.releaseLease();
      };
      await write(a, "fromA");
      await write(b, "fromB");
      assert.equal(await b.getSecret("fromA"), "fromA");
      assert.equal(await a.getSecret("fromB"), "fromB");
      await Promise.all([a.close(), b.close()]);
    });
  }

  it("a second context for another device is refused, not given a store of its own", async () => {
    const name = newName();
    const results = await Promise.allSettled([
      IndexedDbCryptoStore.open({ userId: ALICE, deviceId: DEVICE, name }),
      IndexedDbCryptoStore.open({ userId: ALICE, deviceId: "OTHERDEVICE", name }),
    ]);
    const opened = results.filter((r) => r.status === "fulfilled");
    assert.equal(opened.length, 1);
    const refused = results.find((r) => r.status === "rejected");
    assert.ok(refused?.reason instanceof StoreMismatchError, String(refused?.reason));
    await opened[0]?.value.close();
  });
});
