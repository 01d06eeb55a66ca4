// Real clients we did not write, through the devserver, on the key paths: one-time keys exhausted
// (fallback key), a client restarting from its store, cross-signing bootstrap, key backup, and key
// export files crossing from matrix-js-sdk to matrix-nio and back.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  bodyIs,
  closePeers,
  encryptedRoom,
  JsSdkPeer,
  loginPeer,
  NioPeer,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  type PeerKind,
  passwordFor,
  registerNewPeer,
  sendAndDecrypt,
  skipUnlessAvailable,
  uniqueUsername,
} from "../support/peers/index.ts";

describe("real clients through the devserver: keys", () => {
  let server: TestDevServer;
  before(async () => {
    server = await startTestDevServer();
  });
  after(async () => {
    await server.close();
  });

  it("one-time keys exhausted: nio claims js-sdk's fallback key and the Olm session still works", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["nio", "js-sdk"])) return;
    const peers: Peer[] = [];
    try {
      const alice = await registerNewPeer("nio", server.baseUrl);
      peers.push(alice);
      const bob = await registerNewPeer("js-sdk", server.baseUrl);
      peers.push(bob);
      const roomId = await encryptedRoom(alice, bob);
      await alice.waitForDevices(bob.userId, (ids) => ids.includes(bob.deviceId));

      // Claim every one-time key of Bob's device until the server hands out the fallback key. Claims
      // do not wake Bob's sync, so he cannot replenish before Alice claims (and gets the fallback too).
      const thief = await server.register();
      let fallback = false;
      for (let i = 0; i < 1000 && !fallback; i++) {
        const res = await server.api("POST", "/keys/claim", {
          token: thief.accessToken,
          body: { one_time_keys: { [bob.userId]: { [bob.deviceId]: "signed_curve25519" } } },
        });
        assert.equal(res.status, 200);
        const keys = Object.values(res.json.one_time_keys[bob.userId]?.[bob.deviceId] ?? {});
        assert.equal(keys.length, 1, "a one-time key or the fallback key, never nothing");
        fallback = (keys[0] as { fallback?: unknown }).fallback === true;
      }
      assert.ok(fallback, "js-sdk publishes a fallback key");

      await sendAndDecrypt(alice, bob, roomId, "over an Olm session built on the fallback key");
      await sendAndDecrypt(bob, alice, roomId, "and back");
    } finally {
      await closePeers(peers);
    }
  });

  it("nio restarts from its store on the same device and keeps decrypting and sending", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["nio", "js-sdk"])) return;
    const storeDir = await mkdtemp(join(tmpdir(), "keyroom-nio-store-"));
    const peers: Peer[] = [];
    try {
      const alice = await registerNewPeer("js-sdk", server.baseUrl);
      peers.push(alice);
      const bobName = uniqueUsername("nio");
      const bob = await NioPeer.register(server.baseUrl, bobName, passwordFor(bobName), { storeDir });
      peers.push(bob);
      const roomId = await encryptedRoom(alice, bob);
      const before = await sendAndDecrypt(alice, bob, roomId, "before bob restarts");
      await sendAndDecrypt(bob, alice, roomId, "bob before the restart");
      const keys = await bob.identityKeys();
      await bob.close();

      // Same device, same store: the Olm account, sessions and inbound Megolm sessions come back.
      const bobAgain = await NioPeer.login(server.baseUrl, bobName, passwordFor(bobName), {
        storeDir,
        deviceId: bob.deviceId,
      });
      peers.push(bobAgain);
      assert.equal(bobAgain.deviceId, bob.deviceId);
      assert.deepEqual(await bobAgain.identityKeys(), keys);
      // Alice's session reached this device before the restart, so no key is sent again: the
      // restored inbound session decrypts.
      const after = await sendAndDecrypt(alice, bobAgain, roomId, "after bob restarted");
      assert.equal(after.sessionId, before.sessionId);
      await sendAndDecrypt(bobAgain, alice, roomId, "bob after the restart");
    } finally {
      await closePeers(peers);
      await rm(storeDir, { recursive: true, force: true });
    }
  });

  it("js-sdk: cross-signing bootstrap (UIA by password) is visible to another user", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async () => {
    const peers: JsSdkPeer[] = [];
    try {
      const aliceName = uniqueUsername("js-sdk");
      const alice = await JsSdkPeer.register(server.baseUrl, aliceName, passwordFor(aliceName));
      peers.push(alice);
      const bob = await JsSdkPeer.register(server.baseUrl, uniqueUsername("js-sdk"), "bob-password");
      peers.push(bob);
      const roomId = await encryptedRoom(alice, bob);
      await sendAndDecrypt(alice, bob, roomId, "before cross-signing");
      assert.equal((await bob.deviceStatus(alice.userId, alice.deviceId))?.signedByOwner, false);

      await alice.bootstrapCrossSigning(passwordFor(aliceName));
      assert.deepEqual(await alice.deviceStatus(alice.userId, alice.deviceId), {
        signedByOwner: true,
        crossSigningVerified: true,
      });
      // Bob learns of the new signature through device_lists.changed and a fresh /keys/query.
      await bob.waitForDeviceStatus(alice.userId, alice.deviceId, (s) => s.signedByOwner);
      assert.equal((await bob.deviceStatus(alice.userId, alice.deviceId))?.crossSigningVerified, false);
    } finally {
      await closePeers(peers);
    }
  });

  it("js-sdk: key backup round trip to a new device, which then decrypts history", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async () => {
    const peers: JsSdkPeer[] = [];
    try {
      const aliceName = uniqueUsername("js-sdk");
      const alice = await JsSdkPeer.register(server.baseUrl, aliceName, passwordFor(aliceName));
      peers.push(alice);
      const bob = await JsSdkPeer.register(server.baseUrl, uniqueUsername("js-sdk"), "bob-password");
      peers.push(bob);
      const roomId = await encryptedRoom(alice, bob);
      await sendAndDecrypt(bob, alice, roomId, "kept in the backup");

      const secret = await alice.enableKeyBackup();
      assert.ok((await alice.waitForKeyBackupUploaded()) >= 1);

      const alice2 = await JsSdkPeer.login(server.baseUrl, aliceName, passwordFor(aliceName));
      peers.push(alice2);
      assert.notEqual(alice2.deviceId, alice.deviceId);
      const restored = await alice2.restoreKeyBackup(secret);
      assert.ok(restored.imported >= 1, `imported ${restored.imported} of ${restored.total}`);
      const old = await alice2.waitForMessage(roomId, bodyIs("kept in the backup", bob.userId));
      assert.equal(old.decrypted, true);
    } finally {
      await closePeers(peers);
    }
  });

  for (const [exporterKind, importerKind] of [
    ["js-sdk", "nio"],
    ["nio", "js-sdk"],
  ] as [PeerKind, PeerKind][]) {
    it(`key export from ${exporterKind} imports into ${importerKind} on a new device, which then decrypts history`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, [exporterKind, importerKind])) return;
      const peers: Peer[] = [];
      try {
        const aliceName = uniqueUsername(exporterKind);
        const alice = await registerNewPeer(exporterKind, server.baseUrl, aliceName);
        peers.push(alice);
        const bob = await registerNewPeer("js-sdk", server.baseUrl);
        peers.push(bob);
        const roomId = await encryptedRoom(alice, bob);
        const eventId = await bob.sendText(roomId, "history to carry over");
        await alice.waitForMessage(roomId, (m) => m.eventId === eventId && m.decrypted);
        const file = await alice.exportRoomKeys("export passphrase");
        assert.match(file, /^-----BEGIN MEGOLM SESSION DATA-----\n/);
        assert.match(file.trimEnd(), /\n-----END MEGOLM SESSION DATA-----$/);

        // Alice moves to the other client: the new device sees the old event but holds no key for it.
        const alice2 = await loginPeer(importerKind, server.baseUrl, aliceName, passwordFor(aliceName));
        peers.push(alice2);
        const before = await alice2.waitForMessage(roomId, (m) => m.eventId === eventId);
        assert.equal(before.decrypted, false, "the new device cannot decrypt before the import");
        await assert.rejects(alice2.importRoomKeys(file, "wrong passphrase"));
        await alice2.importRoomKeys(file, "export passphrase");
        const after = await alice2.waitForMessage(roomId, (m) => m.eventId === eventId && m.decrypted);
        assert.equal(after.body, "history to carry over");
        assert.equal(after.sender, bob.userId);
      } finally {
        await closePeers(peers);
      }
    });
  }
});
