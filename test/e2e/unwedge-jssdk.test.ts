// Olm session unwedging, Keyroom -> matrix-js-sdk: js-sdk's crypto store (matrix-sdk-crypto-wasm on
// IndexedDB, here `fake-indexeddb`) goes back to an older copy, so the Olm session Keyroom sends its
// room keys on is lost. js-sdk marks Keyroom's device wedged, and the next time it encrypts for
// Keyroom's user it claims a key and makes a new session; Keyroom takes it up (most recently used)
// and its next room key decrypts. The other direction, and nio, are in unwedge-peers.test.ts.
//
// What js-sdk does not do (matrix-sdk-crypto-wasm 18.9): unwedge before it sends something itself
// (js-sdk asks for missing sessions only when encrypting), or send an `m.dummy` Keyroom receives:
// none arrives, decryptable or not, so the test asserts the new session, not the dummy.
//
// matrix-rust-sdk unwedges only a device it holds a session with whose newest session is over an
// hour old (UNWEDGING_INTERVAL; with no session at all it does nothing): the copy's sessions are
// aged as an older backup's would be.
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  closePeers,
  JsSdkPeer,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  passwordFor,
  skipUnlessAvailable,
  uniqueUsername,
} from "../support/peers/index.ts";
import {
  keyroomRoom,
  keyroomUser,
  krToPeer,
  peerToKr,
  seen,
  syncUntil,
  useFixture,
} from "./complement-helpers.ts";
import { devServerFixture } from "./e2ee-client-helpers.ts";
import { AGE_MS, sendWithNewKey } from "./unwedge-helpers.ts";

const fx = devServerFixture("keyroom-unwedge-jssdk-");
useFixture(fx);

function done<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb(name: string): Promise<IDBDatabase> {
  const r = indexedDB.open(name);
  r.onupgradeneeded = () => {
    r.transaction?.abort();
  };
  return done(r);
}

/** Every record of every object store of an IndexedDB database (out-of-line keys, as the Rust store uses). */
type DbCopy = Map<string, { keys: IDBValidKey[]; values: unknown[] }>;

async function copyDb(name: string): Promise<DbCopy> {
  const db = await openDb(name);
  try {
    const out: DbCopy = new Map();
    for (const store of db.objectStoreNames) {
      const s = db.transaction(store, "readonly").objectStore(store);
      assert.equal(s.keyPath, null, "out-of-line keys");
      out.set(store, { keys: await done(s.getAllKeys()), values: await done(s.getAll()) });
    }
    return out;
  } finally {
    db.close();
  }
}

/** Puts the database back as it was copied (same schema: the copy's stores emptied and refilled). */
async function restoreDb(name: string, copy: DbCopy): Promise<void> {
  const db = await openDb(name);
  try {
    const tx = db.transaction([...copy.keys()], "readwrite");
    const finished = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    for (const [store, { keys, values }] of copy) {
      const s = tx.objectStore(store);
      s.clear();
      for (const [i, key] of keys.entries()) s.put(values[i], key);
    }
    await finished;
  } finally {
    db.close();
  }
}

/**
 * Moves the Olm sessions of a copy `ms` into the past. The unencrypted Rust store keeps each session
 * as base64 of JSON with `creation_time` and `last_use_time` in seconds.
 */
function ageRustSessions(copy: DbCopy, ms: number): number {
  const sessions = copy.get("session");
  assert.ok(sessions, "the store has Olm sessions");
  sessions.values = sessions.values.map((v) => {
    assert.equal(typeof v, "string");
    const s = JSON.parse(Buffer.from(v as string, "base64").toString("utf8"));
    assert.equal(typeof s.creation_time, "number");
    s.creation_time -= Math.ceil(ms / 1000);
    s.last_use_time -= Math.ceil(ms / 1000);
    return Buffer.from(JSON.stringify(s), "utf8").toString("base64");
  });
  return sessions.values.length;
}

/** The creation times (seconds) of the Olm sessions in a copy. */
function rustSessionTimes(copy: DbCopy): number[] {
  return (copy.get("session")?.values ?? []).map(
    (v) => JSON.parse(Buffer.from(v as string, "base64").toString("utf8")).creation_time as number,
  );
}

describe("Olm session unwedging, Keyroom's session lost by js-sdk (devserver, IndexedDB store)", () => {
  it("Keyroom -> js-sdk: js-sdk restored an old store, unwedges Keyroom's device, and Keyroom's next key decrypts", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const open: Peer[] = [];
    try {
      const kr = await keyroomUser("uw");
      const name = uniqueUsername("js-sdk");
      const prefix = `unwedge-${name}`;
      const database = `${prefix}::matrix-sdk-crypto`;
      const first = await JsSdkPeer.register(fx.hs.baseUrl, name, passwordFor(name), {
        cryptoDatabasePrefix: prefix,
      });
      open.push(first);
      const login = async () => {
        const p = await JsSdkPeer.login(fx.hs.baseUrl, name, passwordFor(name), {
          cryptoDatabasePrefix: prefix,
          deviceId: first.deviceId,
        });
        open.push(p);
        return p;
      };
      const roomId = await keyroomRoom(kr, first, { rotationPeriodMessages: 1 });

      // An Olm session both ways (Keyroom made it, js-sdk answered on it).
      await krToPeer(kr, first, roomId, "one");
      await peerToKr(first, kr, roomId, "two");

      // js-sdk's copy, with the client stopped; then the session moves on past it (both ratchet).
      await first.close();
      const copy = await copyDb(database);
      let js = await login();
      await krToPeer(kr, js, roomId, "three");
      const four = await sendWithNewKey(js, roomId, "four");
      await syncUntil(kr, () => seen(kr, four).body !== undefined, "four");
      await krToPeer(kr, js, roomId, "five");

      // js-sdk goes back to the copy, aged as a backup taken over an hour ago.
      await js.close();
      assert.ok(ageRustSessions(copy, AGE_MS) >= 1, "the copy holds the Olm session");
      await restoreDb(database, copy);
      const restoredAt = Math.floor(Date.now() / 1000);
      js = await login();

      // Keyroom's next room key goes out on the session js-sdk lost: js-sdk cannot read it, and unwedges.
      const lost = await kr.client.sendText(roomId, "six: its key went over the session js-sdk lost");
      const undecryptable = await js.waitForMessage(roomId, (m) => m.eventId === lost);
      assert.equal(undecryptable.decrypted, false, "js-sdk cannot decrypt it");
      // js-sdk makes the new session when it next encrypts for Keyroom's user (its key claims, which
      // take wedged devices along, run then): its next message's room key goes out on that session.
      const reply = await js.sendText(roomId, "after six");
      await syncUntil(kr, () => seen(kr, reply).body !== undefined, "js-sdk's message decrypted by Keyroom");
      // (That alone proves little: Keyroom can still read js-sdk's old sending chain. The new session does.)
      const created = rustSessionTimes(await copyDb(database));
      assert.equal(created.length, 2, "js-sdk holds a second Olm session with Keyroom's device");
      assert.ok(
        created.some((at) => at >= restoredAt),
        "made after the restore",
      );

      // Keyroom's next room key goes out on that session (Keyroom's most recently used), and js-sdk
      // decrypts with it.
      await krToPeer(kr, js, roomId, "seven");
    } finally {
      await closePeers(open);
    }
  });
});
