// Server-side key backup through the devserver: a version created and filled incrementally after
// syncs, a new device restoring with the recovery key (everything, one room, one session, with
// progress), on-demand lookups before key requests, a replaced version and a forged auth_data.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type FetchLike, MatrixClient } from "../../src/client/index.ts";
import { PkDecryption } from "../../src/crypto/pk/index.ts";
import { KeyBackupError } from "../../src/e2ee/index.ts";
import {
  devServerFixture,
  fixtureDevice,
  fixtureUser,
  sharedRoom,
  syncAll,
  type TestClient,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-backup-");

/** Sessions uploaded per `PUT /room_keys/keys`, recorded by a fetch wrapper. */
function countingFetch(uploads: number[]): FetchLike {
  return async (url, init) => {
    if (init?.method === "PUT" && String(url).includes("/room_keys/keys")) {
      const body = JSON.parse(String(init.body)) as { rooms: Record<string, { sessions: object }> };
      uploads.push(Object.values(body.rooms).reduce((n, r) => n + Object.keys(r.sessions).length, 0));
    }
    return fetch(url, init);
  };
}

async function sendAll(t: TestClient, roomId: string, bodies: readonly string[]): Promise<void> {
  for (const body of bodies) await t.client.sendText(roomId, body);
}

/** Sync, then wait for the backup's background work that sync started. */
async function syncAndSettle(...clients: TestClient[]): Promise<void> {
  await syncAll(...clients);
  for (const c of clients) await c.client.crypto.backup.idle();
}

describe("key backup through the devserver", () => {
  it("backs up after syncs, once; a new device restores everything, one room, one session", async () => {
    const alice = await fixtureUser(fx, "bk-alice");
    const bob = await fixtureUser(fx, "bk-bob");
    const roomA = await sharedRoom(alice, [bob]);
    const roomB = await sharedRoom(bob, [alice]);
    await sendAll(bob, roomA, ["a1", "a2"]);
    await sendAll(bob, roomB, ["b1"]);
    await syncAll(alice);
    const created = await alice.client.crypto.backup.createVersion();
    assert.match(created.recoveryKey, /^Es[A-Za-z0-9]{2}( [A-Za-z0-9]{4}){11}$/);
    await alice.client.crypto.backup.idle();
    const status = await alice.client.crypto.backup.status();
    assert.equal(status.version, created.version);
    assert.equal(status.trusted, true);
    assert.equal(status.uploading, true);
    assert.ok(status.total >= 2, "alice holds bob's sessions (and her own outbound ones)");
    assert.equal(status.backedUp, status.total);
    assert.deepEqual(alice.client.getAccountData("m.key_backup"), { enabled: true });

    // A new key after the version exists goes up after the next sync.
    await bob.client.crypto.machine.discardRoomKey(roomA);
    await sendAll(bob, roomA, ["a3"]);
    await syncAndSettle(alice);
    const after = await alice.client.crypto.backup.status();
    assert.equal(after.backedUp, after.total);

    // A new device of alice: restores with the recovery key.
    const fresh = await fixtureDevice(fx, alice, "restore");
    await assert.rejects(
      fresh.client.crypto.backup.useKey(PkDecryption.create().exportPrivateKey()),
      (e) => e instanceof KeyBackupError && e.code === "KEY_MISMATCH",
    );
    const used = await fresh.client.crypto.backup.useKey(created.recoveryKey);
    assert.equal(used.version, created.version);
    assert.equal(used.hasKey, true);
    const [someKey] = await alice.client.crypto.machine.exportRoomKeys([roomA]);
    assert.ok(someKey);
    const oneSession = await fresh.client.crypto.backup.restore({
      roomId: roomA,
      sessionId: someKey.session_id,
    });
    assert.deepEqual([oneSession.imported, oneSession.total], [1, 1]);
    const oneRoom = await fresh.client.crypto.backup.restore({ roomId: roomB });
    assert.equal(oneRoom.imported, oneRoom.total);
    assert.ok(oneRoom.total >= 1);
    const progress: [number, number][] = [];
    const all = await fresh.client.crypto.backup.restore({ onProgress: (d, t) => progress.push([d, t]) });
    assert.equal(all.failed, 0);
    assert.equal(all.total, after.total);
    assert.equal(all.imported, all.total - oneRoom.total - 1);
    assert.deepEqual(progress.at(-1), [all.total, all.total]);
    // Restored from the version it uploads to: nothing to upload again.
    const freshStatus = await fresh.client.crypto.backup.status();
    assert.equal(freshStatus.backedUp, freshStatus.total);
    assert.equal(freshStatus.trustedBy !== undefined, true);

    // History decrypts with the restored keys.
    const history: string[] = [];
    for await (const ev of fresh.client.history(roomA)) {
      if (ev.type === "m.room.message" && typeof ev.content.body === "string")
        history.unshift(ev.content.body);
    }
    assert.deepEqual(history, ["a1", "a2", "a3"]);
    await fresh.client.close();
  });

  it("a new device with the backup key decrypts synced history on demand, without a restore", async () => {
    const alice = await fixtureUser(fx, "bk-demand");
    const bob = await fixtureUser(fx, "bk-demand-bob");
    const roomId = await sharedRoom(bob, [alice]);
    await sendAll(bob, roomId, ["old one", "old two"]);
    await syncAll(alice);
    const { privateKey } = await alice.client.crypto.backup.createVersion();
    await alice.client.crypto.backup.idle();

    const fresh = await fixtureDevice(fx, alice, "on-demand");
    await fresh.client.crypto.backup.useKey(privateKey);
    await syncAndSettle(fresh);
    const undecryptable = fresh.events.filter(
      (e) => e.roomId === roomId && e.encryption?.decrypted === false,
    );
    assert.equal(undecryptable.length, 2, "the history arrives before its keys");
    assert.deepEqual(
      fresh.late.filter((e) => e.roomId === roomId).map((e) => e.content.body),
      ["old one", "old two"],
    );
    await fresh.client.close();
  });

  it("a version replaced by another device stops uploads (reported once); m.key_backup disabled stops them too", async () => {
    const alice = await fixtureUser(fx, "bk-wrong");
    const bob = await fixtureUser(fx, "bk-wrong-bob");
    const roomId = await sharedRoom(bob, [alice]);
    await sendAll(bob, roomId, ["one"]);
    await syncAll(alice);
    const errors: unknown[] = [];
    alice.client.on("error", (e) => void errors.push(e));
    const first = await alice.client.crypto.backup.createVersion();
    await alice.client.crypto.backup.idle();

    // Another device of alice's makes a new version (a new key): alice's next upload is refused.
    const other = await fixtureDevice(fx, alice, "replacer");
    const second = await other.client.crypto.backup.createVersion();
    assert.notEqual(second.version, first.version);
    await bob.client.crypto.machine.discardRoomKey(roomId);
    await sendAll(bob, roomId, ["two"]);
    // The app's own uploads beside the background run the sync starts: the one batch goes up once,
    // and its refusal stops uploads; no caller gets the server's error.
    await syncAll(alice);
    const uploads = await Promise.allSettled([
      alice.client.crypto.backup.uploadPending(),
      alice.client.crypto.backup.uploadPending(),
    ]);
    assert.deepEqual(
      uploads.map((u) => u.status),
      ["fulfilled", "fulfilled"],
    );
    await alice.client.crypto.backup.idle();
    const status = await alice.client.crypto.backup.status({ check: false });
    assert.deepEqual(
      [status.version, status.stopped, status.uploading],
      [first.version, "version_changed", false],
    );
    assert.equal(errors.filter((e) => e instanceof KeyBackupError && e.code === "VERSION_CHANGED").length, 1);
    // The check against the server says the same, and reports nothing new.
    await alice.client.crypto.backup.status();
    assert.equal(errors.length, 1);
    // Nothing of alice's went to the new version: it holds only what the other device had.
    const otherStatus = await other.client.crypto.backup.status();
    const server = await fetch(`${fx.hs.baseUrl}/_matrix/client/v3/room_keys/version/${second.version}`, {
      headers: { authorization: `Bearer ${(await other.client.store.loadSession())?.accessToken}` },
    });
    assert.equal(((await server.json()) as { count: number }).count, otherStatus.backedUp);

    // Using the new version's key: uploads resume there.
    await alice.client.crypto.backup.useKey(second.privateKey);
    await alice.client.crypto.backup.idle();
    const resumed = await alice.client.crypto.backup.status();
    assert.deepEqual(
      [resumed.version, resumed.stopped, resumed.backedUp],
      [second.version, undefined, resumed.total],
    );

    // Deleting the old version is housekeeping: backup stays on, on the new version.
    await alice.client.crypto.backup.deleteVersion(first.version);
    assert.deepEqual(alice.client.getAccountData("m.key_backup"), { enabled: true });
    assert.equal((await alice.client.crypto.backup.status()).version, second.version);

    // The user turns backup off elsewhere (m.key_backup): no upload runs here.
    await alice.client.setAccountData("m.key_backup", { enabled: false });
    await bob.client.crypto.machine.discardRoomKey(roomId);
    await sendAll(bob, roomId, ["three"]);
    await syncAndSettle(alice);
    const off = await alice.client.crypto.backup.status();
    assert.deepEqual([off.uploading, off.enabledInAccountData], [false, false]);
    assert.equal(off.backedUp, off.total - 1);

    // Deleting the version forgets it and its key here.
    await alice.client.crypto.backup.deleteVersion();
    const gone = await alice.client.crypto.backup.status();
    assert.deepEqual([gone.version, gone.hasKey, gone.backedUp], [undefined, false, 0]);
    await other.client.close();
  });

  it("a server that swaps in its own public key under our signature is not trusted: nothing more goes up", async () => {
    const alice = await fixtureUser(fx, "bk-forged");
    const bob = await fixtureUser(fx, "bk-forged-bob");
    const roomId = await sharedRoom(bob, [alice]);
    await sendAll(bob, roomId, ["before"]);
    await syncAll(alice);
    const created = await alice.client.crypto.backup.createVersion();
    await alice.client.crypto.backup.idle();
    const token = (await alice.client.store.loadSession())?.accessToken;
    const url = `${fx.hs.baseUrl}/_matrix/client/v3/room_keys/version/${created.version}`;
    const info = (await (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      algorithm: string;
      auth_data: Record<string, unknown>;
    };
    // The server's key, with the signatures alice made over her own key: they no longer check out.
    const swapped = { ...info.auth_data, public_key: PkDecryption.create().publicKey };
    const put = await fetch(url, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ algorithm: info.algorithm, auth_data: swapped, version: created.version }),
    });
    assert.equal(put.status, 200);
    const status = await alice.client.crypto.backup.status();
    assert.deepEqual([status.version, status.trusted, status.uploading], [created.version, false, false]);
    const before = status.backedUp;
    await bob.client.crypto.machine.discardRoomKey(roomId);
    await sendAll(bob, roomId, ["after"]);
    await syncAndSettle(alice);
    const after = await alice.client.crypto.backup.status({ check: false });
    assert.equal(after.backedUp, before, "no key was uploaded under the swapped key");
    assert.equal(after.total, before + 1);
  });

  it("restarting does not upload anything again; a restored key is not uploaded", async () => {
    const alice = await fixtureUser(fx, "bk-restart");
    const bob = await fixtureUser(fx, "bk-restart-bob");
    const roomId = await sharedRoom(bob, [alice]);
    const uploads: number[] = [];
    const second = await fixtureDevice(fx, alice, "counted", countingFetch(uploads));
    // Bob learns of the second device before he sends: it gets the room key too.
    await syncAll(second, bob);
    await sendAll(bob, roomId, ["x"]);
    await syncAll(alice, second);
    const created = await alice.client.crypto.backup.createVersion();
    await alice.client.crypto.backup.idle();
    // The second device uses the same version: its own uploads are the keys it holds.
    await second.client.crypto.backup.useKey(created.privateKey);
    await second.client.crypto.backup.idle();
    const firstRound = uploads.reduce((a, b) => a + b, 0);
    const s1 = await second.client.crypto.backup.status();
    assert.equal(s1.backedUp, s1.total);
    assert.ok(s1.total >= 1, "the second device holds a key, so a restart has something to upload again");
    assert.equal(firstRound, s1.total);
    // Restart: a new client on the same store uploads nothing.
    const storeDir = second.storeDir;
    const session = await second.client.store.loadSession();
    await second.client.close();
    const again = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: storeDir } },
      fetch: countingFetch(uploads),
    });
    fx.open.push(again);
    assert.ok(session);
    await again.restore(session);
    await again.syncOnce({ timeoutMs: 0 });
    await again.crypto.backup.idle();
    assert.equal(
      uploads.reduce((a, b) => a + b, 0),
      firstRound,
      "nothing uploaded twice",
    );

    // A device that restores the keys from the version it uploads to sends none of them back.
    const restorerUploads: number[] = [];
    const restorer = await fixtureDevice(fx, alice, "restorer", countingFetch(restorerUploads));
    await restorer.client.crypto.backup.useKey(created.privateKey);
    const restored = await restorer.client.crypto.backup.restore();
    assert.ok(restored.imported >= 1, `restored ${restored.imported}`);
    await syncAndSettle(restorer);
    assert.deepEqual(restorerUploads, [], "a restored key is not uploaded");
  });
});
