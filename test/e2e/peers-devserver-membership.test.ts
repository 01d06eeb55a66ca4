// Real clients we did not write, through the devserver, as membership and devices change: the room
// key rotates when a member leaves or a device logs out (the server says so through membership and
// device_lists), and a late joiner sees earlier history without being able to decrypt it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  closePeers,
  encryptedRoom,
  loginPeer,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  type PeerKind,
  passwordFor,
  registerNewPeer,
  sendAndDecrypt,
  skipUnlessAvailable,
  uniqueUsername,
} from "../support/peers/index.ts";

describe("real clients through the devserver: membership and device changes", () => {
  let server: TestDevServer;
  before(async () => {
    server = await startTestDevServer();
  });
  after(async () => {
    await server.close();
  });

  for (const [senderKind, otherKind] of [
    ["js-sdk", "nio"],
    ["nio", "js-sdk"],
  ] as [PeerKind, PeerKind][]) {
    it(`${senderKind} rotates the room key when a ${otherKind} member leaves; the others still decrypt`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, [senderKind, otherKind])) return;
      const peers: Peer[] = [];
      try {
        const alice = await registerNewPeer(senderKind, server.baseUrl);
        peers.push(alice);
        const bob = await registerNewPeer(otherKind, server.baseUrl);
        peers.push(bob);
        const carol = await registerNewPeer(otherKind, server.baseUrl);
        peers.push(carol);
        const roomId = await encryptedRoom(alice, bob);
        await alice.invite(roomId, carol.userId);
        await carol.waitForMembership(roomId, carol.userId, "invite");
        await carol.join(roomId);
        await alice.waitForMembership(roomId, carol.userId, "join");

        const firstId = await alice.sendText(roomId, "to bob and carol");
        const first = await bob.waitForMessage(roomId, (m) => m.eventId === firstId && m.decrypted);
        await carol.waitForMessage(roomId, (m) => m.eventId === firstId && m.decrypted);
        assert.ok(first.sessionId);

        await bob.leave(roomId);
        await alice.waitForMembership(roomId, bob.userId, "leave");
        const secondId = await alice.sendText(roomId, "carol only");
        const second = await carol.waitForMessage(roomId, (m) => m.eventId === secondId && m.decrypted);
        assert.ok(second.sessionId);
        assert.notEqual(second.sessionId, first.sessionId, "a new Megolm session after the leave");
      } finally {
        await closePeers(peers);
      }
    });
  }

  for (const [senderKind, joinerKind] of [
    ["js-sdk", "nio"],
    ["nio", "js-sdk"],
  ] as [PeerKind, PeerKind][]) {
    it(`a ${joinerKind} late joiner sees earlier ${senderKind} history (shared visibility) but cannot decrypt it`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, [senderKind, joinerKind])) return;
      const peers: Peer[] = [];
      try {
        const alice = await registerNewPeer(senderKind, server.baseUrl);
        peers.push(alice);
        const bob = await registerNewPeer(joinerKind, server.baseUrl);
        peers.push(bob);
        const roomId = await alice.createRoom({ encrypted: true });
        const beforeId = await alice.sendText(roomId, "before bob was invited");

        await alice.invite(roomId, bob.userId);
        await bob.waitForMembership(roomId, bob.userId, "invite");
        await bob.join(roomId);
        await alice.waitForMembership(roomId, bob.userId, "join");
        await sendAndDecrypt(alice, bob, roomId, "after bob joined");
        // The old event is in Bob's timeline (private_chat rooms share history), still encrypted:
        // Alice's client shares the room key only from the index Bob joined at, or a new one.
        const old = await bob.waitForMessage(roomId, (m) => m.eventId === beforeId);
        assert.equal(old.encrypted, true);
        assert.equal(old.decrypted, false);
        assert.equal(old.body, undefined);
      } finally {
        await closePeers(peers);
      }
    });
  }

  for (const [senderKind, deviceKind] of [
    ["js-sdk", "nio"],
    ["nio", "js-sdk"],
  ] as [PeerKind, PeerKind][]) {
    it(`a ${deviceKind} device logs out: the ${senderKind} sender learns it and rotates the room key`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, [senderKind, deviceKind])) return;
      const peers: Peer[] = [];
      try {
        const bob = await registerNewPeer(senderKind, server.baseUrl);
        peers.push(bob);
        const aliceName = uniqueUsername("js-sdk");
        const alice = await registerNewPeer("js-sdk", server.baseUrl, aliceName);
        peers.push(alice);
        const roomId = await encryptedRoom(alice, bob);
        const alice2 = await loginPeer(deviceKind, server.baseUrl, aliceName, passwordFor(aliceName));
        peers.push(alice2);
        await bob.waitForDevices(alice.userId, (ids) => ids.includes(alice2.deviceId));
        const first = await sendAndDecrypt(bob, alice2, roomId, "to both of alice's devices");

        await alice2.logout();
        // The server tells Bob through device_lists.changed; his next query no longer lists the device.
        await bob.waitForDevices(alice.userId, (ids) => !ids.includes(alice2.deviceId));
        assert.deepEqual(await bob.knownDevices(alice.userId), [alice.deviceId]);
        const second = await sendAndDecrypt(bob, alice, roomId, "to the device alice kept");
        assert.notEqual(second.sessionId, first.sessionId, "a new Megolm session after the device left");
      } finally {
        await closePeers(peers);
      }
    });
  }
});
