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
import { MatrixClient } from "../../src/client/index.ts";
import {
  devServerFixture,
  eventById,
  newUser,
  syncAll,
  type TestClient,
  uniq,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-no-downgrade-");

async function user(prefix: string, fetch?: FetchLike): Promise<TestClient> {
  if (fetch === undefined) {
    const t = await newUser(fx.hs, fx.dir, prefix);
    fx.open.push(t.client);
    return t;
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
