// Issue 10 item 11: a Keyroom client sent plaintext into an encrypted room. The room was created
// with `history_visibility: joined` (or `invited`), then got `m.room.encryption`, then an invite;
// the joiner's first sync lacked every state event hidden from it, so its client took the room
// for unencrypted. The devserver now gives the full state (test/e2e/devserver-rooms.test.ts); the
// client also never downgrades: `m.room.encryption` seen anywhere (invite state included) is
// recorded in the crypto store, and later syncs that omit it change nothing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { FetchLike } from "../../src/client/http.ts";
import { MatrixClient, MemoryClientStore } from "../../src/client/index.ts";
import { gatedCryptoStore } from "../../src/client/test-support/gated-crypto-store.ts";
import { SqliteCryptoStore } from "../../src/store/sqlite/sqlite-store.ts";
import {
  devServerFixture,
  eventById,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-no-downgrade-");

async function user(prefix: string, fetch?: FetchLike): Promise<TestClient> {
  if (fetch === undefined) {
    return fixtureUser(fx, prefix);
  }
  const name = uniq(prefix);
  const storeDir = join(fx.dir, name);
  const client = new MatrixClient({
    homeserverUrl: fx.hs.baseUrl,
    syncTimeoutMs: 0,
    fetch,
    encryption: { store: { directory: storeDir } },
  });
  fx.open.push(client);
  await client.register({ username: name, password: "pw" });
  return watch(client, name, storeDir);
}

type Json = Record<string, unknown>;
const isEncryption = (e: unknown) => (e as { type?: unknown }).type === "m.room.encryption";

/**
 * A server that, once the user has joined, never mentions `m.room.encryption` again: gone from
 * joined rooms' state and timeline in /sync, from /state, and 404 for the event itself. Invites
 * still carry it (as the devserver's and Synapse's invite state do).
 */
const forgetfulServer: FetchLike = async (input, init) => {
  const url = new URL(input);
  if (/\/rooms\/[^/]+\/state\/m\.room\.encryption/.test(url.pathname)) {
    return Response.json({ errcode: "M_NOT_FOUND", error: "Event not found" }, { status: 404 });
  }
  const res = await fetch(input, init);
  if (!res.ok) return res;
  if (url.pathname.endsWith("/sync")) {
    const body = (await res.json()) as { rooms?: { join?: Record<string, Json> } };
    for (const room of Object.values(body.rooms?.join ?? {})) {
      for (const section of ["state", "timeline"]) {
        const s = room[section] as { events?: unknown[] } | undefined;
        if (s?.events) s.events = s.events.filter((e) => !isEncryption(e));
      }
    }
    return Response.json(body);
  }
  if (/\/rooms\/[^/]+\/state$/.test(url.pathname)) {
    const events = (await res.json()) as unknown[];
    return Response.json(events.filter((e) => !isEncryption(e)));
  }
  return res;
};

/** The order: visibility in the initial state, then `m.room.encryption`, then the invite. */
async function hiddenEncryptionRoom(owner: TestClient, invitee: TestClient, visibility: string) {
  const roomId = await owner.client.createRoom({
    name: "hidden encryption",
    encrypted: false,
    initialState: [
      { type: "m.room.history_visibility", state_key: "", content: { history_visibility: visibility } },
    ],
  });
  await owner.client.sendStateEvent(roomId, "m.room.encryption", "", { algorithm: "m.megolm.v1.aes-sha2" });
  await owner.client.invite(roomId, invitee.client.userId);
  return roomId;
}

describe("an encrypted room is never sent plaintext (issue 10 item 11)", () => {
  for (const visibility of ["joined", "invited"]) {
    it(`the issue's scenario through the devserver (history_visibility ${visibility})`, async () => {
      const alice = await user("alice");
      const bob = await user("bob");
      const roomId = await hiddenEncryptionRoom(alice, bob, visibility);
      await syncAll(alice, bob);
      await bob.client.joinRoom(roomId);
      await syncAll(bob);
      assert.equal(bob.client.getRoom(roomId)?.encrypted, true, "the joiner sees the room's encryption");
      const id = await bob.client.sendText(roomId, "secret");
      await syncAll(alice);
      const ev = eventById(alice, id);
      assert.equal(ev.raw.type, "m.room.encrypted", "the server saw only ciphertext");
      assert.equal(ev.content.body, "secret");
    });
  }

  it("seen only in the invite, it is recorded: a server that omits it later gets no plaintext", async () => {
    const alice = await user("alice");
    const bob = await user("bob", forgetfulServer);
    const roomId = await hiddenEncryptionRoom(alice, bob, "joined");
    await syncAll(alice, bob);
    assert.equal(bob.client.getRoom(roomId)?.membership, "invite");
    await bob.client.joinRoom(roomId);
    await syncAll(bob);
    assert.equal(bob.client.getRoom(roomId)?.encrypted, false, "the server hides the room's encryption");
    assert.equal(await bob.client.isRoomEncrypted(roomId), true, "the crypto store remembers it");

    const id = await bob.client.sendText(roomId, "never in the clear");
    await syncAll(alice);
    assert.equal(eventById(alice, id).raw.type, "m.room.encrypted");
    assert.equal(eventById(alice, id).content.body, "never in the clear");
    const file = await bob.client.sendFile(roomId, new Uint8Array([1, 2, 3]), { filename: "x.bin" });
    await syncAll(alice);
    assert.equal(eventById(alice, file).raw.type, "m.room.encrypted");

    // A restart from the same store (a fresh initial sync that still omits it) keeps it encrypted.
    await bob.client.close();
    const again = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      fetch: forgetfulServer,
      encryption: { store: { directory: bob.storeDir }, restoreDeviceId: true },
    });
    fx.open.push(again);
    await again.login({ user: bob.client.userId, password: "pw" });
    await again.syncOnce({ timeoutMs: 0 });
    const after = await again.sendText(roomId, "after a restart");
    await syncAll(alice);
    assert.equal(eventById(alice, after).raw.type, "m.room.encrypted");
    assert.equal(eventById(alice, after).content.body, "after a restart");
  });
});

/** `forgetfulServer`, noting the type of each event the client sends into a room, and uploads. */
function recordingSends(): { sent: string[]; fetch: FetchLike } {
  const sent: string[] = [];
  const fetch: FetchLike = (input, init) => {
    const path = decodeURIComponent(new URL(input).pathname);
    if (path.includes("/send/")) sent.push(path.split("/send/")[1]?.split("/")[0] ?? "");
    if (path.endsWith("/upload")) sent.push("upload");
    return forgetfulServer(input, init);
  };
  return { sent, fetch };
}

/**
 * Alice and Bob in an encrypted room; Bob's client closed, his device's crypto store (which
 * recorded the room as encrypted) left for a new client.
 */
async function bobAway() {
  const alice = await user("alice");
  const bob = await user("bob");
  const roomId = await sharedRoom(alice, [bob]);
  await bob.client.sendText(roomId, "before");
  await syncAll(alice);
  const { userId, deviceId } = bob.client;
  await bob.client.close();
  return { alice, roomId, userId, deviceId, storeDir: bob.storeDir };
}

describe("a room only the crypto store remembers as encrypted, while encryption is not running", () => {
  it("a send during a login's crypto store opening waits for it and goes out encrypted", async () => {
    const { alice, roomId, userId, deviceId, storeDir } = await bobAway();
    // Bob's device logs in again with a new client store, and the server's state of the room has
    // lost m.room.encryption (a state reset); only his crypto store, slow to open, remembers it.
    const server = recordingSends();
    const gated = gatedCryptoStore(({ userId, deviceId }) =>
      SqliteCryptoStore.open({ userId, deviceId, directory: storeDir }),
    );
    const client = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      store: new MemoryClientStore(),
      fetch: server.fetch,
      encryption: { store: gated.factory },
    });
    fx.open.push(client);
    const login = client.login({ user: userId, password: "pw", deviceId });
    login.catch(() => undefined);
    await gated.opened;
    const sending = client.sendText(roomId, "during the login");
    sending.catch(() => undefined);
    // Turns in which the send, had it taken the missing store for "not encrypted", settled on plaintext.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    gated.release();
    await login;
    const id = await sending;
    assert.deepEqual(server.sent, ["m.room.encrypted"]);
    await syncAll(alice);
    assert.equal(eventById(alice, id).raw.type, "m.room.encrypted");
    assert.equal(eventById(alice, id).content.body, "during the login");
  });

  it("after a failed start (wrong passphrase) a send is refused, nothing goes out", async () => {
    const { alice, roomId, userId, deviceId, storeDir } = await bobAway();
    const store = new MemoryClientStore();
    const login = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      store,
      encryption: { store: { directory: storeDir } },
    });
    fx.open.push(login);
    await login.login({ user: userId, password: "pw", deviceId });
    await login.close();
    const session = await store.loadSession();
    assert.ok(session);

    // The device restored with a new client store and the wrong passphrase, on a server whose
    // state of the room lost m.room.encryption: the crypto store does not open, and a send is
    // refused rather than guessed unencrypted. Nothing goes out, not even a file upload.
    const server = recordingSends();
    const wrong = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      store: new MemoryClientStore(),
      fetch: server.fetch,
      encryption: { store: { directory: storeDir }, passphrase: "not the key" },
    });
    fx.open.push(wrong);
    const failed = await wrong.restore(session).then(
      () => assert.fail("the store opened with the wrong passphrase"),
      (e: unknown) => e,
    );
    const notStarted = (e: unknown) => {
      assert.equal((e as { code?: unknown }).code, "NOT_STARTED");
      assert.equal((e as Error).cause, failed, "the start's own error is the cause");
      return true;
    };
    await assert.rejects(wrong.sendText(roomId, "after a failed start"), notStarted);
    await assert.rejects(
      wrong.sendFile(roomId, new Uint8Array([1, 2, 3]), { filename: "x.bin" }),
      notStarted,
    );
    assert.deepEqual(server.sent, []);
    await syncAll(alice);
    assert.ok(!alice.events.some((e) => e.content.body === "after a failed start"));
  });
});
