// The IndexedDB client store when IndexedDB fails as browsers make it fail (fake-indexeddb, the
// crypto store's failure injection): a connection the browser closed, a transaction it aborts (the
// quota used up), a request that throws or fails. Each is a ClientError, STORE_CLOSED or
// STORE_FAILED, with the DOMException as cause and its message not quoted; a failed save saves
// nothing; no abort also reaches the process as an unhandled rejection (node:test fails the test).
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  failRequests,
  keepingConnections,
  type RequestFailure,
} from "../../store/indexeddb/test-support/failures.ts";
import { ClientError, type ClientErrorCode } from "../errors.ts";
import { IndexedDbClientStore } from "./idb-store.ts";
import type { StoredSession } from "./store.ts";

/** In a DOMException's message: must not reach the client error's (a browser's may quote a value). */
const SENTINEL = "sentinel-record-contents";

const session: StoredSession = {
  homeserverUrl: "https://hs",
  userId: "@a:hs",
  deviceId: "DEV",
  accessToken: "tok",
};
const other: StoredSession = { ...session, deviceId: "DEV2", accessToken: "tok2" };

let n = 0;
async function openStore() {
  const { factory, connections } = keepingConnections();
  const store = new IndexedDbClientStore({ name: `idb-client-errors-${n++}`, indexedDB: factory });
  await store.saveSession(session);
  await store.saveSync({ nextBatch: "s1", rooms: [], accountData: [] });
  /** The browser closes the store's connection behind its back (site data cleared in DevTools, say). */
  const closeBehindItsBack = () => {
    for (const c of connections) c.close();
  };
  return { store, closeBehindItsBack };
}

const READS: Readonly<Record<string, (s: IndexedDbClientStore) => Promise<unknown>>> = {
  loadSession: (s) => s.loadSession(),
  loadSync: (s) => s.loadSync(),
};
const WRITES: Readonly<Record<string, (s: IndexedDbClientStore) => Promise<unknown>>> = {
  saveSession: (s) => s.saveSession(other),
  saveSync: (s) => s.saveSync({ nextBatch: "s2", rooms: [], accountData: [] }),
  clear: (s) => s.clear(),
  clearIf: (s) => s.clearIf(() => true),
};

/** A ClientError with `code` whose cause is a DOMException named `causeName`, its message not quoted. */
function typed(code: ClientErrorCode, causeName: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof ClientError, `not a ClientError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.cause instanceof DOMException, "the original is the cause");
    assert.equal(e.cause.name, causeName);
    assert.ok(!e.message.includes(SENTINEL), "the DOMException's message is not quoted");
    return true;
  };
}

/** Nothing of a failed write reached the database. */
async function unchanged(store: IndexedDbClientStore): Promise<void> {
  assert.deepEqual(await store.loadSession(), session);
  assert.equal((await store.loadSync())?.nextBatch, "s1");
}

const quota = () => new DOMException(SENTINEL, "QuotaExceededError");
const unknown = () => new DOMException(SENTINEL, "UnknownError");
const failures: readonly { label: string; failure: () => RequestFailure; causeName: string }[] = [
  // The transaction's error says why, not the AbortError of its requests.
  {
    label: "the browser aborts the transaction (quota)",
    failure: () => ({ abortWith: quota() }),
    causeName: "QuotaExceededError",
  },
  {
    label: "a request throws UnknownError",
    failure: () => ({ throws: unknown() }),
    causeName: "UnknownError",
  },
];

describe("IndexedDbClientStore: IndexedDB's failures as typed client errors", () => {
  it("every call on a connection the browser closed fails with STORE_CLOSED", async () => {
    const { store, closeBehindItsBack } = await openStore();
    closeBehindItsBack();
    for (const [name, call] of Object.entries({ ...READS, ...WRITES })) {
      await assert.rejects(call(store), typed("STORE_CLOSED", "InvalidStateError"), name);
    }
    await store.close();
  });

  for (const { label, failure, causeName } of failures) {
    it(`reads fail with STORE_FAILED when ${label}`, async () => {
      const { store } = await openStore();
      for (const [name, read] of Object.entries(READS)) {
        const restore = failRequests("read", failure());
        try {
          await assert.rejects(read(store), typed("STORE_FAILED", causeName), name);
        } finally {
          restore();
        }
      }
      await unchanged(store);
      await store.close();
    });

    for (const kind of ["read", "write"] as const) {
      it(`writes fail with STORE_FAILED, nothing saved, when ${label} (at a ${kind})`, async () => {
        const { store } = await openStore();
        for (const [name, write] of Object.entries(WRITES)) {
          // saveSession reads nothing; clear makes only writes.
          if (kind === "read" && (name === "saveSession" || name === "clear")) continue;
          const restore = failRequests(kind, failure());
          try {
            await assert.rejects(write(store), typed("STORE_FAILED", causeName), name);
          } finally {
            restore();
          }
          await unchanged(store);
        }
        await store.saveSync({ nextBatch: "s3", rooms: [], accountData: [] });
        assert.equal((await store.loadSync())?.nextBatch, "s3", "saves work again");
        await store.close();
      });
    }
  }

  it("a save whose write request fails after it was made (not thrown) has that request's error as cause", async () => {
    const { store } = await openStore();
    for (const [name, write] of Object.entries({
      saveSession: WRITES.saveSession,
      saveSync: WRITES.saveSync,
    })) {
      const restore = failRequests("write", { failsLater: true });
      try {
        await assert.rejects(write!(store), typed("STORE_FAILED", "ConstraintError"), name);
      } finally {
        restore();
      }
      await unchanged(store);
    }
    await store.close();
  });

  it("a database IndexedDB does not open fails with STORE_FAILED", async () => {
    const refusing: IDBFactory = {
      open: () => {
        throw unknown();
      },
      deleteDatabase: (name) => indexedDB.deleteDatabase(name),
      cmp: (a, b) => indexedDB.cmp(a, b),
      databases: () => indexedDB.databases(),
    };
    const store = new IndexedDbClientStore({ name: `idb-client-errors-${n++}`, indexedDB: refusing });
    await assert.rejects(store.loadSession(), typed("STORE_FAILED", "UnknownError"));
  });
});
