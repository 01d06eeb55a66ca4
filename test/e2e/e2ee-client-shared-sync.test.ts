// Two clients of one device on one crypto store (as two processes or two tabs), both syncing:
// whichever handles a sync response first consumes its to-device messages, the other applies only
// its rooms. The orders of arrival are forced here (one client's /sync answer is held back while
// the other syncs on), so each case is checked every run, not when the machine happens to be slow.
// On SQLite (two processes) and on IndexedDB (two tabs: fake-indexeddb, one lock manager and one
// broadcast bus for both, so a client reloads as soon as the other lets go, as in a browser; there
// the other client's background work after its sync may reload this one again later, so the
// second case's order is forced on SQLite only).
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type CryptoStoreOption, type FetchLike, MatrixClient } from "../../src/client/index.ts";
import { IndexedDbCryptoStore } from "../../src/store/indexeddb/idb-store.ts";
import { FakeChannels, FakeLocks } from "../../src/store/indexeddb/test-support/fakes.ts";
import {
  devServerFixture,
  keyroomDevice,
  sharedRoom,
  type TestClient,
  texts,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-shared-sync-");

/** A fetch whose next /sync answer can be held: read from the server at once, handed over later. */
function holdingFetch() {
  let next: { answered: () => void; release: Promise<void> } | undefined;
  const fetchImpl: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    const hold = next;
    if (hold === undefined || !new URL(url).pathname.endsWith("/sync")) return res;
    next = undefined;
    const body = await res.text();
    hold.answered();
    await hold.release;
    return new Response(body, { status: res.status, headers: res.headers });
  };
  /** Holds the next /sync answer; `answered` settles once the server has answered it. */
  const holdNextSync = () => {
    let answered: () => void = () => {};
    let release: () => void = () => {};
    const state = {
      answered: new Promise<void>((r) => {
        answered = r;
      }),
      release: () => release(),
    };
    next = {
      answered,
      release: new Promise<void>((r) => {
        release = r;
      }),
    };
    return state;
  };
  return { fetch: fetchImpl, holdNextSync };
}

type Backend = "SQLite" | "IndexedDB";

/** One crypto store for both clients (each opens its own connection to it). */
function oneStore(backend: Backend, name: string): CryptoStoreOption {
  if (backend === "SQLite") return { directory: join(fx.dir, name) };
  const locks = new FakeLocks();
  const channels = new FakeChannels();
  return ({ userId, deviceId }) =>
    IndexedDbCryptoStore.open({
      userId,
      deviceId,
      name,
      locks,
      broadcast: channels.factory,
      passphrase: "tab secret",
      kdfIterations: 1000,
    });
}

/** Alice's device in two clients on one store; the second one's /sync answers can be held. */
async function twins(
  backend: Backend,
): Promise<{ one: TestClient; two: TestClient; held: ReturnType<typeof holdingFetch> }> {
  const name = uniq("alice");
  const store = oneStore(backend, name);
  const client = (fetchImpl?: FetchLike) => {
    const c = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      syncFilter: { room: { timeline: { limit: 100 } } },
      ...(fetchImpl !== undefined ? { fetch: fetchImpl } : {}),
      encryption: { store },
    });
    fx.open.push(c);
    return c;
  };
  const first = client();
  await first.register({ username: name, password: "pw" });
  const session = await first.store.loadSession();
  assert.ok(session);
  const held = holdingFetch();
  const second = client(held.fetch);
  await second.restore(session);
  return { one: watch(first, name, name), two: watch(second, name, name), held };
}

const once = (t: TestClient, roomId: string, body: string) =>
  texts(t, roomId).filter((b) => b === body).length;

for (const backend of ["SQLite", "IndexedDB"] as const)
  describe(`two clients on one store (${backend}), both syncing`, () => {
    it("a response handled after the other client synced past its end: the events in between are still shown", async () => {
      const { one, two, held } = await twins(backend);
      const bob = await keyroomDevice(fx, uniq("bob"), "register");
      const roomId = await sharedRoom(bob, [one]);
      await two.client.syncOnce({ timeoutMs: 0 });
      await one.client.syncOnce({ timeoutMs: 0 });

      // Two's answer carries "first"; before two handles it, one handles that range and the next,
      // which carries "second": the shared position is past the end of two's answer.
      await bob.client.sendText(roomId, "first");
      const hold = held.holdNextSync();
      const late = two.client.syncOnce({ timeoutMs: 0 });
      await hold.answered;
      await one.client.syncOnce({ timeoutMs: 0 });
      await bob.client.sendText(roomId, "second");
      await one.client.syncOnce({ timeoutMs: 0 });
      hold.release();
      await late;
      await two.client.syncOnce({ timeoutMs: 0 });
      await one.client.syncOnce({ timeoutMs: 0 });

      for (const [t, name] of [
        [one, "one"],
        [two, "two"],
      ] as const) {
        assert.equal(once(t, roomId, "first"), 1, `${name} shows "first" once`);
        assert.equal(once(t, roomId, "second"), 1, `${name} shows "second" once`);
        const undecrypted = t.events.filter((e) => e.roomId === roomId && e.encryption?.decrypted === false);
        assert.deepEqual(undecrypted, [], `${name} decrypts everything`);
      }
    });

    it("a response from a position the other client synced past is applied rooms-only, though this one reloaded before asking", async () => {
      const { one, two } = await twins(backend);
      const bob = await keyroomDevice(fx, uniq("bob"), "register");
      const roomId = await sharedRoom(bob, [one]);
      for (const t of [two, one, two, one]) await t.client.syncOnce({ timeoutMs: 0 });
      const pings: string[] = [];
      one.client.on("toDevice", (ev) => void (ev.type === PING && pings.push("one")));
      two.client.on("toDevice", (ev) => void (ev.type === PING && pings.push("two")));

      // One handles the range carrying Bob's to-device message and "third"; then two takes the
      // store for something else (it reloads), and only then asks for that range.
      await ping(bob, one.client.userId, one.client.deviceId);
      await bob.client.sendText(roomId, "third");
      await one.client.syncOnce({ timeoutMs: 0 });
      await two.client.getUserDevices(two.client.userId);
      await two.client.syncOnce({ timeoutMs: 0 });
      await one.client.syncOnce({ timeoutMs: 0 });

      assert.deepEqual(pings, ["one"], "the to-device message is handled by one client, once");
      assert.equal(once(one, roomId, "third"), 1);
      assert.equal(once(two, roomId, "third"), 1);
    });

    it("a response reaching past the shared position: its to-device messages after it are not lost", async () => {
      const { one, two } = await twins(backend);
      const bob = await keyroomDevice(fx, uniq("bob"), "register");
      const roomId = await sharedRoom(bob, [one]);
      for (const t of [two, one, two, one]) await t.client.syncOnce({ timeoutMs: 0 });

      // One handles "fourth" (the shared position moves past two's); then Bob sends "fifth" with a
      // new room key: two's next response reaches past the shared position and carries that key,
      // handled by no client yet. Two applies it rooms-only; the key must still arrive somewhere.
      await two.client.syncOnce({ timeoutMs: 0 });
      await bob.client.sendText(roomId, "fourth");
      await one.client.syncOnce({ timeoutMs: 0 });
      await bob.client.crypto.machine.discardRoomKey(roomId);
      await bob.client.sendText(roomId, "fifth");
      for (const t of [two, two, one, two]) await t.client.syncOnce({ timeoutMs: 0 });

      assert.equal(once(one, roomId, "fifth"), 1, "one decrypts it");
      assert.equal(once(two, roomId, "fifth"), 1, "two decrypts it");
    });
  });

const PING = "org.example.ping";

/** Bob sends a plain to-device message to one device (straight to the server's API). */
async function ping(bob: TestClient, userId: string, deviceId: string): Promise<void> {
  const session = await bob.client.store.loadSession();
  assert.ok(session);
  const res = await fetch(`${fx.hs.baseUrl}/_matrix/client/v3/sendToDevice/${PING}/${uniq("txn")}`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${session.accessToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ messages: { [userId]: { [deviceId]: { n: 1 } } } }),
  });
  assert.equal(res.status, 200);
}
