// History sharing on invite (MSC4268, spec v1.19) through the devserver with Keyroom clients: the
// inviter sends the room's shareable keys, the invitee reads what was said before the invite (also
// keys the inviter has only in the key backup); a bundle from anyone but the inviter, or from a
// device the inviter did not cross-sign, is not imported; a `joined`-only room shares nothing.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MatrixClient } from "../../src/client/index.ts";
import {
  devServerFixture,
  eventById,
  fixtureUser,
  syncAll,
  type TestClient,
  texts,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-history-");

async function user(prefix: string): Promise<TestClient> {
  const t = await fixtureUser(fx, prefix);
  await t.client.bootstrapCrossSigning(); // bundles go to cross-signed devices only
  return t;
}

async function room(owner: TestClient, visibility: string, invite: TestClient[] = []): Promise<string> {
  const roomId = await owner.client.createRoom({
    name: "history",
    invite: invite.map((t) => t.client.userId),
    initialState: [
      { type: "m.room.history_visibility", state_key: "", content: { history_visibility: visibility } },
    ],
  });
  for (const t of invite) {
    await t.client.syncOnce({ timeoutMs: 0 });
    await t.client.joinRoom(roomId);
  }
  await syncAll(owner, ...invite);
  return roomId;
}

describe("history sharing on invite (devserver, Keyroom ↔ Keyroom)", () => {
  it("the invitee decrypts the history from before the invite, with the inviter named as its source", async () => {
    const alice = await user("hsa");
    const bob = await user("hsb");
    const roomId = await room(alice, "shared");
    const before = await alice.client.sendText(roomId, "said before Bob came");
    await alice.client.sendText(roomId, "also before");
    await syncAll(alice, bob);

    await alice.client.invite(roomId, bob.client.userId);
    await bob.client.syncOnce({ timeoutMs: 0 }); // the invite and the bundle (remembered only)
    await bob.client.joinRoom(roomId); // accepting the inviter's invite imports it
    await bob.client.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(texts(bob, roomId), ["said before Bob came", "also before"]);
    // Bob has only Alice's word for these keys: they came through her device.
    const ev = eventById(bob, before);
    assert.equal(ev.encryption?.decrypted, true);
    // The event says whose word Bob has for it: Alice's (the spec: MUST show it to the user).
    assert.deepEqual(ev.encryption?.decrypted === true ? ev.encryption.keysFrom : undefined, {
      curve25519: alice.client.crypto.machine.identityKeys.curve25519,
      userId: alice.client.userId,
      deviceId: alice.client.deviceId,
    });
    const sessionId = (ev.raw.content as { session_id: string }).session_id;
    const record = await bob.client.crypto.machine.exportRoomKeys([roomId]);
    const key = record.find((k) => k.session_id === sessionId);
    assert.deepEqual(key?.forwarding_curve25519_key_chain, [
      alice.client.crypto.machine.identityKeys.curve25519,
    ]);

    // After joining, Bob's own messages are shareable too (the room's history is `shared`).
    await bob.client.sendText(roomId, "hello");
    await alice.client.syncOnce({ timeoutMs: 0 });
    assert.ok(texts(alice, roomId).includes("hello"));
  });

  it("keys this device has only in the key backup are fetched before the bundle is built", async () => {
    const first = await user("hsba");
    const bob = await user("hsbb");
    const roomId = await room(first, "shared");
    const backup = await first.client.crypto.backup.createVersion();
    await first.client.sendText(roomId, "sent from the first device");
    assert.ok((await first.client.crypto.backup.uploadPending()) >= 1);

    // A second device of the same user, which never got that key, holding only the backup key.
    const storeDir = join(fx.dir, `${first.name}-2`);
    const second = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: storeDir } },
    });
    fx.open.push(second);
    await second.login({ user: first.client.userId, password: "pw" });
    await second.syncOnce({ timeoutMs: 0 });
    assert.equal((await second.crypto.backup.useKey(backup.privateKey)).trusted, true);
    // Bob takes bundles only from devices their owner cross-signed: the first device verifies it.
    await first.client.verifyDevice(first.client.userId, second.deviceId);

    await second.invite(roomId, bob.client.userId);
    await bob.client.syncOnce({ timeoutMs: 0 });
    await bob.client.joinRoom(roomId);
    await bob.client.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(texts(bob, roomId), ["sent from the first device"]);
  });

  it("a bundle from a device of the inviter that the inviter did not cross-sign is dropped", async () => {
    const alice = await user("hsua");
    const bob = await user("hsub");
    const roomId = await room(alice, "shared");
    const other = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: join(fx.dir, `${alice.name}-unsigned`) } },
    });
    fx.open.push(other);
    await other.login({ user: alice.client.userId, password: "pw" }); // never verified
    await other.syncOnce({ timeoutMs: 0 });
    const before = await other.sendText(roomId, "from the unsigned device");
    const otherRoom = other.getRoom(roomId);
    assert.ok(otherRoom);
    const shared = await other.crypto.shareRoomHistory(otherRoom, bob.client.userId);
    assert.ok(shared !== undefined && shared.devices.length === 1); // sent...
    await alice.client.invite(roomId, bob.client.userId); // (Alice's own bundle lacks that session)
    await bob.client.syncOnce({ timeoutMs: 0 });
    await bob.client.joinRoom(roomId);
    await bob.client.syncOnce({ timeoutMs: 0 });
    assert.notEqual(eventById(bob, before).encryption?.decrypted, true); // ...but not taken
    assert.deepEqual(await bob.client.crypto.machine.historySharing.bundlesToImport(), []);
  });

  it("a bundle from someone other than the inviter is not imported", async () => {
    const alice = await user("hsc");
    const carol = await user("hsd");
    const dave = await user("hse");
    const roomId = await room(alice, "shared", [carol]);
    const secret = await alice.client.sendText(roomId, "before Dave");
    await syncAll(carol);
    // Carol (a member, not the inviter) sends Dave her bundle; Alice invites him from a client
    // without encryption, which sends none.
    const sent = await carol.client.crypto.historySharing.share(roomId, dave.client.userId);
    assert.ok(sent.roomKeys >= 1 && sent.devices.length === 1);
    const plain = new MatrixClient({ homeserverUrl: fx.hs.baseUrl });
    fx.open.push(plain);
    await plain.login({ user: alice.client.userId, password: "pw" });
    await plain.invite(roomId, dave.client.userId);

    const bundles: { type: string; sender: string; content: Record<string, unknown> }[] = [];
    dave.client.on("toDevice", ({ type, sender, content }) => {
      if (type === "m.room_key_bundle") bundles.push({ type, sender, content });
    });
    await dave.client.syncOnce({ timeoutMs: 0 });
    // Carol's bundle did arrive (decrypted; its `file` is kept from the app) ...
    assert.deepEqual(bundles, [
      { type: "m.room_key_bundle", sender: carol.client.userId, content: { room_id: roomId } },
    ]);
    // ... but Dave accepts Alice's invite: it is not imported.
    await dave.client.joinRoom(roomId);
    await dave.client.syncOnce({ timeoutMs: 0 });
    const ev = eventById(dave, secret);
    assert.notEqual(ev.encryption?.decrypted, true);
    assert.deepEqual(await dave.client.crypto.machine.historySharing.bundlesToImport(), []);
  });

  it("a room whose history is visible only to joined members shares nothing", async () => {
    const alice = await user("hsf");
    const erin = await user("hsg");
    const roomId = await room(alice, "joined");
    await alice.client.sendText(roomId, "members only");
    const r = alice.client.getRoom(roomId);
    assert.ok(r);
    assert.equal(await alice.client.crypto.shareRoomHistory(r, erin.client.userId), undefined);
  });
});
