// Real clients we did not write, talking through the devserver: matrix-js-sdk (Rust crypto, on
// vodozemac) and matrix-nio (libolm). Every pair exchanges Megolm-encrypted messages both ways; one
// user's js-sdk and nio devices read each other; a devserver restart in the middle of a conversation
// loses nothing. (Membership changes: peers-devserver-membership; keys: peers-devserver-keys.)
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startDevServer } from "../../src/devserver/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  bodyIs,
  closePeers,
  encryptedRoom,
  JsSdkPeer,
  loginPeer,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  type PeerKind,
  passwordFor,
  registerNewPeer,
  sendAndDecrypt,
  skipUnlessAvailable,
  unavailableReason,
  uniqueUsername,
} from "../support/peers/index.ts";

describe("real clients through the devserver", () => {
  let server: TestDevServer;
  before(async () => {
    server = await startTestDevServer();
  });
  after(async () => {
    await server.close();
  });

  const pairs: [PeerKind, PeerKind][] = [
    ["js-sdk", "js-sdk"],
    ["nio", "nio"],
    ["js-sdk", "nio"],
    ["nio", "js-sdk"],
  ];
  for (const [aliceKind, bobKind] of pairs) {
    it(`${aliceKind} ↔ ${bobKind}: Megolm messages both ways, each decrypts the other's`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, [aliceKind, bobKind])) return;
      const peers: Peer[] = [];
      try {
        const alice = await registerNewPeer(aliceKind, server.baseUrl);
        peers.push(alice);
        const bob = await registerNewPeer(bobKind, server.baseUrl);
        peers.push(bob);
        const roomId = await encryptedRoom(alice, bob);
        await sendAndDecrypt(alice, bob, roomId, `hello ${bobKind} from ${aliceKind}`);
        await sendAndDecrypt(bob, alice, roomId, `hello ${aliceKind} from ${bobKind}`);
        // A second round reuses the established Megolm sessions (and, for the replier, its own).
        await sendAndDecrypt(alice, bob, roomId, "second message");
        await sendAndDecrypt(bob, alice, roomId, "second reply");
      } finally {
        await closePeers(peers);
      }
    });
  }

  it("one user with a js-sdk and a nio device: each device decrypts the other's messages and a third party's", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk", "nio"])) return;
    const peers: Peer[] = [];
    try {
      const aliceName = uniqueUsername("js-sdk");
      const aliceJs = await registerNewPeer("js-sdk", server.baseUrl, aliceName);
      peers.push(aliceJs);
      const carol = await registerNewPeer("js-sdk", server.baseUrl);
      peers.push(carol);
      const roomId = await encryptedRoom(aliceJs, carol);
      const aliceNio = await loginPeer("nio", server.baseUrl, aliceName, passwordFor(aliceName));
      peers.push(aliceNio);
      await aliceJs.waitForDevices(aliceJs.userId, (ids) => ids.includes(aliceNio.deviceId));
      await carol.waitForDevices(aliceJs.userId, (ids) => ids.includes(aliceNio.deviceId));
      await aliceNio.waitForMembership(roomId, aliceNio.userId, "join");

      await sendAndDecrypt(aliceJs, aliceNio, roomId, "from my js-sdk device to my nio device");
      await aliceNio.waitForDevices(aliceJs.userId, (ids) => ids.includes(aliceJs.deviceId));
      await sendAndDecrypt(aliceNio, aliceJs, roomId, "from my nio device to my js-sdk device");
      const fromCarol = await carol.sendText(roomId, "to both of alice's devices");
      for (const device of [aliceJs, aliceNio]) {
        await device.waitForMessage(roomId, (m) => m.eventId === fromCarol && m.decrypted);
      }
    } finally {
      await closePeers(peers);
    }
  });
});

describe("a devserver restart in the middle of a conversation", () => {
  it("loses nothing: accounts, rooms, device keys, to-device queues and sync positions survive", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async () => {
    // With matrix-nio missing this still runs, js-sdk on both ends (unavailableReason prints why).
    const bobKind: PeerKind = unavailableReason("nio") === undefined ? "nio" : "js-sdk";
    const dir = await mkdtemp(join(tmpdir(), "keyroom-restart-"));
    const dbPath = join(dir, "devserver.sqlite");
    let server = await startDevServer({ dbPath, port: 0 });
    const peers: Peer[] = [];
    try {
      const aliceName = uniqueUsername("js-sdk");
      const alice = await JsSdkPeer.register(server.baseUrl, aliceName, passwordFor(aliceName));
      peers.push(alice);
      const bobName = uniqueUsername(bobKind);
      const bob = await registerNewPeer(bobKind, server.baseUrl, bobName);
      peers.push(bob);
      const roomId = await encryptedRoom(alice, bob);
      await sendAndDecrypt(alice, bob, roomId, "before the restart (alice)");
      await sendAndDecrypt(bob, alice, roomId, "before the restart (bob)");

      // Bob's second device goes quiet (nio syncs only when asked): the room key Alice sends it
      // must wait in its to-device queue, across the restart.
      const bob2 = await loginPeer(bobKind, server.baseUrl, bobName, passwordFor(bobName));
      peers.push(bob2);
      await alice.waitForDevices(bob.userId, (ids) => ids.includes(bob2.deviceId));
      const queued = await alice.sendText(roomId, "queued for bob's second device");

      const { baseUrl } = server;
      await server.close();
      server = await startDevServer({ dbPath, port: Number(new URL(baseUrl).port) });
      assert.equal(server.baseUrl, baseUrl);
      await Promise.all(peers.map((p) => p.resumeSync()));

      const late = await bob2.waitForMessage(roomId, (m) => m.eventId === queued && m.decrypted);
      assert.equal(late.body, "queued for bob's second device");

      // Same sessions, same tokens, same sync positions: the conversation just goes on.
      await sendAndDecrypt(alice, bob, roomId, "after the restart (alice)");
      await sendAndDecrypt(bob, alice, roomId, "after the restart (bob)");

      // A device that appears after the restart: the server still knows the account, the room,
      // and routes Bob's keys to it.
      const alice2 = await JsSdkPeer.login(server.baseUrl, aliceName, passwordFor(aliceName));
      peers.push(alice2);
      await sendAndDecrypt(bob, alice2, roomId, "to every device of alice");

      const expected = [
        "before the restart (alice)",
        "before the restart (bob)",
        "queued for bob's second device",
        "after the restart (alice)",
        "after the restart (bob)",
        "to every device of alice",
      ];
      for (const peer of [alice, bob]) {
        await peer.waitForMessage(roomId, bodyIs("to every device of alice"));
        const seen = peer.messages(roomId);
        assert.deepEqual(
          seen.map((m) => m.body),
          expected,
          `${peer.kind} saw every message once, in order`,
        );
        assert.ok(seen.every((m) => m.encrypted && m.decrypted));
      }
    } finally {
      await closePeers(peers);
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
