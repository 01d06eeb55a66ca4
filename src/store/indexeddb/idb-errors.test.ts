import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sample } from "../conformance.ts";
import { StoreError, type StoreErrorCode } from "../errors.ts";
import { IndexedDbCryptoStore } from "./idb-store.ts";
import { ALICE, DEVICE, newName } from "./test-support/contexts.ts";
import { failRequests, keepingConnections, type RequestFailure } from "./test-support/failures.ts";
import { FakeLocks } from "./test-support/fakes.ts";

/** In a DOMException's message: must not reach the store error's (a browser's may quote a key or value). */
const SENTINEL = "sentinel-record-contents";

/** Every read of the store that reaches IndexedDB. */
const READS: Readonly<Record<string, (s: IndexedDbCryptoStore) => Promise<unknown>>> = {
  loadAccount: (s) => s.loadAccount(),
  getOlmSessions: (s) => s.getOlmSessions("sk"),
  getInboundGroupSession: (s) => s.getInboundGroupSession("!r:x", "g1"),
  getInboundGroupSessions: (s) => s.getInboundGroupSessions([{ roomId: "!r:x", sessionId: "g1" }]),
  getInboundGroupSessionsForRoom: (s) => s.getInboundGroupSessionsForRoom("!r:x"),
  countInboundGroupSessions: (s) => s.countInboundGroupSessions(),
  listInboundGroupSessions: (s) => s.listInboundGroupSessions({ limit: 10 }),
  getInboundGroupSessionsToBackUp: (s) => s.getInboundGroupSessionsToBackUp(10),
  getOutboundGroupSession: (s) => s.getOutboundGroupSession("!r:x"),
  getUserDevices: (s) => s.getUserDevices(ALICE),
  getDevicesOfUsers: (s) => s.getDevicesOfUsers([ALICE]),
  getDeviceByCurve25519Key: (s) => s.getDeviceByCurve25519Key("ck"),
  getCrossSigningIdentity: (s) => s.getCrossSigningIdentity(ALICE),
  getSecret: (s) => s.getSecret("m.megolm_backup.v1"),
  getTrackedUsers: (s) => s.getTrackedUsers(),
  getOutgoingKeyRequests: (s) => s.getOutgoingKeyRequests(),
  getWithheld: (s) => s.getWithheld("!r:x", "g1"),
  isOlmMessageKnown: (s) => s.isOlmMessageKnown("sk", "h"),
  getCustomValue: (s) => s.getCustomValue("k"),
  getReplays: (s) => s.getReplays("!r:x", "g1", 10),
  getReplaysOfSessions: (s) => s.getReplaysOfSessions([{ roomId: "!r:x", sessionId: "g1" }], 10),
  getReplay: (s) => s.getReplay("!r:x", "g1", 0),
  getRoomSettings: (s) => s.getRoomSettings("!r:x"),
  getBackupState: (s) => s.getBackupState(),
  getQueuedRequests: (s) => s.getQueuedRequests(),
  getNextBatch: (s) => s.getNextBatch(),
};

type Methods = Readonly<Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>>;
const methods = IndexedDbCryptoStore.prototype as unknown as Methods;

/** The reads not in READS (none taking arguments: checked below): called without any. */
function otherReads(): string[] {
  return Object.getOwnPropertyNames(methods).filter(
    (n) => /^(load|get|count|list|is)[A-Z]/.test(n) && n !== "loadIdentity" && !(n in READS),
  );
}

/** READS, and every read without arguments it does not list. */
function allReads(): [string, (s: IndexedDbCryptoStore) => Promise<unknown>][] {
  const others = otherReads().map((n): [string, (s: IndexedDbCryptoStore) => Promise<unknown>] => [
    n,
    async (s) => (s as unknown as Methods)[n]?.call(s),
  ]);
  return [...Object.entries(READS), ...others];
}

async function openStore() {
  const { factory, connections } = keepingConnections();
  const store = await IndexedDbCryptoStore.open({
    userId: ALICE,
    deviceId: DEVICE,
    name: newName(),
    indexedDB: factory,
    locks: new FakeLocks(),
  });
  await store.saveChanges({ nextBatch: "s1", inboundGroupSessions: [sample.inbound("!r:x", "g1")] });
  /** The browser closes the store's connection behind its back (site data cleared in DevTools, say). */
  const closeBehindItsBack = () => {
    for (const c of connections) c.close();
  };
  return { store, closeBehindItsBack };
}

/** A StoreError with `code` whose cause is a DOMException named `causeName`, its message not quoted. */
function typed(code: StoreErrorCode, causeName: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof StoreError, `not a StoreError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.cause instanceof DOMException, "the original is the cause");
    assert.equal(e.cause.name, causeName);
    assert.ok(!e.message.includes(SENTINEL), "the DOMException's message is not quoted");
    return true;
  };
}

const quota = () => new DOMException(SENTINEL, "QuotaExceededError");
const failures: readonly { label: string; failure: () => RequestFailure; causeName: string }[] = [
  // Requests of a transaction the browser aborts fail with AbortError.
  {
    label: "the browser aborts the transaction (quota)",
    failure: () => ({ abortWith: quota() }),
    causeName: "AbortError",
  },
  {
    label: "a request throws UnknownError",
    failure: () => ({ throws: new DOMException(SENTINEL, "UnknownError") }),
    causeName: "UnknownError",
  },
];

describe("IndexedDbCryptoStore: IndexedDB's failures as typed store errors", () => {
  it("READS lists every read of the store that takes arguments", () => {
    assert.deepEqual(
      otherReads().filter((n) => (methods[n]?.length ?? 0) > 0),
      [],
      "a new read: list it in READS (and read through #read)",
    );
  });

  it("reads from a connection the browser closed fail with StoreError CLOSED", async () => {
    const { store, closeBehindItsBack } = await openStore();
    closeBehindItsBack();
    for (const [name, read] of allReads()) {
      await assert.rejects(read(store), typed("CLOSED", "InvalidStateError"), name);
    }
    await assert.rejects(store.tryAcquireLease(1000), typed("CLOSED", "InvalidStateError"));
    await store.close();
  });

  for (const { label, failure, causeName } of failures) {
    it(`reads fail with StoreError BACKEND when ${label}`, async () => {
      const { store } = await openStore();
      for (const [name, read] of allReads()) {
        const restore = failRequests("read", failure());
        try {
          await assert.rejects(read(store), typed("BACKEND", causeName), name);
        } finally {
          restore();
        }
      }
      assert.equal(await store.getNextBatch(), "s1", "reads work again");
      await store.close();
    });
  }

  const changes = () => ({ nextBatch: "s2", inboundGroupSessions: [sample.inbound("!r:x", "g2")] });

  it("a save to a connection the browser closed fails with StoreError CLOSED", async () => {
    const { store, closeBehindItsBack } = await openStore();
    closeBehindItsBack();
    await assert.rejects(store.saveChanges(changes()), typed("CLOSED", "InvalidStateError"));
    await store.close();
  });

  const saveFailures: readonly { label: string; failure: () => RequestFailure; causeName: string }[] = [
    // The transaction's error says why, not the AbortError of the requests after it.
    {
      label: "the browser aborts the transaction at a write (quota)",
      failure: () => ({ abortWith: quota() }),
      causeName: "QuotaExceededError",
    },
    {
      label: "a write throws UnknownError",
      failure: () => ({ throws: new DOMException(SENTINEL, "UnknownError") }),
      causeName: "UnknownError",
    },
  ];
  for (const { label, failure, causeName } of saveFailures) {
    for (const leased of [false, true]) {
      it(`a save ${leased ? "under" : "outside"} the lease fails with StoreError BACKEND, nothing saved, when ${label}`, async () => {
        const { store } = await openStore();
        if (leased) assert.deepEqual(await store.tryAcquireLease(1000), { stale: false });
        const restore = failRequests("write", failure());
        try {
          await assert.rejects(store.saveChanges(changes()), typed("BACKEND", causeName));
        } finally {
          restore();
        }
        assert.equal(await store.getNextBatch(), "s1", "nothing was saved");
        assert.equal(await store.getInboundGroupSession("!r:x", "g2"), undefined);
        await store.saveChanges({ nextBatch: "s3" });
        assert.equal(await store.getNextBatch(), "s3", "saves work again");
        await store.close();
      });
    }
  }

  it("a save whose write request fails after it was made (not thrown) has that request's error as cause", async () => {
    const { store } = await openStore();
    const restore = failRequests("write", { failsLater: true });
    try {
      // Only puts that need no read first: the save's transaction ends on the failed request.
      await assert.rejects(store.saveChanges({ nextBatch: "s2" }), typed("BACKEND", "ConstraintError"));
    } finally {
      restore();
    }
    assert.equal(await store.getNextBatch(), "s1", "nothing was saved");
    await store.close();
  });

  it("a save whose transaction the browser aborts at a read fails with StoreError BACKEND", async () => {
    const { store } = await openStore();
    // The save's first reads (the lease generation) meet the abort.
    const restore = failRequests("read", { abortWith: quota() });
    try {
      await assert.rejects(store.saveChanges(changes()), typed("BACKEND", "QuotaExceededError"));
    } finally {
      restore();
    }
    assert.equal(await store.getNextBatch(), "s1", "nothing was saved");
    await store.close();
  });
});
