// A Keyroom client created with `encryption` talks to matrix-js-sdk (Rust crypto, vodozemac) and
// matrix-nio (libolm) through the devserver: both directions in an encrypted room, a key export
// written by the other client imports into a fresh Keyroom device and decrypts history, and a key
// export written by Keyroom imports into a new device of the other client, which then reads
// Keyroom's history.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  loginPeer,
  PEER_KINDS,
  PEER_TEST_TIMEOUT_MS,
  passwordFor,
  registerNewPeer,
  registerPeer,
  skipUnlessAvailable,
} from "../support/peers/index.ts";
import { keyroomRoom, keyroomUser, syncUntil, useFixture } from "./complement-helpers.ts";
import { devServerFixture, encryptedClient, type TestClient, uniq, watch } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-interop-");
useFixture(fx);

function decryptedBody(t: TestClient, eventId: string): string | undefined {
  const ev = [...t.events, ...t.late].filter((e) => e.eventId === eventId && e.encryption?.decrypted).at(-1);
  return typeof ev?.content.body === "string" ? ev.content.body : undefined;
}

describe("encrypted Keyroom client ↔ other clients (devserver)", () => {
  for (const kind of PEER_KINDS) {
    it(`${kind}: messages both ways in an encrypted room; its key export decrypts history on a fresh Keyroom device`, {
      timeout: PEER_TEST_TIMEOUT_MS * 2,
    }, async (t) => {
      if (skipUnlessAvailable(t, [kind])) return;
      const peer = await registerPeer(kind, fx.hs.baseUrl, uniq(`peer${kind.replace("-", "")}`), "pw");
      fx.peers.push(peer);
      const kr = await keyroomUser("kr");

      const roomId = await keyroomRoom(kr, peer);

      // Keyroom → peer.
      const fromKr = await kr.client.sendText(roomId, `hello ${kind}, from keyroom`);
      const seen = await peer.waitForMessage(roomId, (m) => m.eventId === fromKr && m.decrypted);
      assert.equal(seen.body, `hello ${kind}, from keyroom`);
      assert.equal(seen.encrypted, true);

      // Peer → Keyroom.
      const fromPeer = await peer.sendText(roomId, `hello keyroom, from ${kind}`);
      await syncUntil(kr, () => decryptedBody(kr, fromPeer) !== undefined, "peer message decrypted");
      assert.equal(decryptedBody(kr, fromPeer), `hello keyroom, from ${kind}`);
      const got = [...kr.events, ...kr.late].find((e) => e.eventId === fromPeer && e.encryption?.decrypted);
      assert.equal(got?.raw.type, "m.room.encrypted");
      assert.equal(got?.encryption?.decrypted && got.encryption.senderDeviceId, peer.deviceId);

      // The peer's key export, imported on a fresh Keyroom device of the Keyroom user, decrypts history.
      const file = await peer.exportRoomKeys("interop passphrase");
      const freshDir = join(fx.dir, `${kr.name}-fresh`);
      const freshClient = encryptedClient(fx.hs, freshDir);
      fx.open.push(freshClient);
      await freshClient.login({ user: kr.client.userId, password: "pw" });
      const fresh = watch(freshClient, kr.name, freshDir);
      await freshClient.syncOnce({ timeoutMs: 0 });
      const before = await freshClient.messages(roomId, { limit: 50 });
      assert.equal(before.events.find((e) => e.eventId === fromPeer)?.encryption?.decrypted, false);
      const result = await freshClient.importRoomKeys(file, "interop passphrase");
      assert.ok(result.imported >= 1);
      assert.equal(decryptedBody(fresh, fromPeer), `hello keyroom, from ${kind}`);
      const after = await freshClient.messages(roomId, { limit: 50 });
      assert.equal(
        after.events.find((e) => e.eventId === fromPeer)?.content.body,
        `hello keyroom, from ${kind}`,
      );
    });
  }
});

describe("Keyroom's key export imported by other clients (devserver)", () => {
  for (const kind of PEER_KINDS) {
    it(`${kind}: a new device without keys refuses a wrong passphrase, then imports Keyroom's export and decrypts Keyroom's messages`, {
      timeout: PEER_TEST_TIMEOUT_MS * 2,
    }, async (t) => {
      if (skipUnlessAvailable(t, [kind])) return;
      const peerName = uniq(`exp${kind.replace("-", "")}`);
      const peer = await registerNewPeer(kind, fx.hs.baseUrl, peerName);
      fx.peers.push(peer);
      const kr = await keyroomUser("krexp");

      const roomId = await keyroomRoom(kr, peer);

      // Keyroom's messages, encrypted for the peer's only device at the time.
      const bodies = ["first from keyroom", "second from keyroom"];
      const sent: { eventId: string; body: string; sessionId: string | undefined }[] = [];
      for (const body of bodies) {
        const eventId = await kr.client.sendText(roomId, body);
        const seen = await peer.waitForMessage(roomId, (m) => m.eventId === eventId && m.decrypted);
        assert.equal(seen.body, body);
        sent.push({ eventId, body, sessionId: seen.sessionId });
      }
      // The first device goes away, so no other device of the peer user can hand keys over.
      await peer.close();

      const file = await kr.client.exportRoomKeys("keyroom export passphrase");
      assert.match(file, /^-----BEGIN MEGOLM SESSION DATA-----\n/);

      // A new device of the peer user: it sees the events but holds no key for them.
      const fresh = await loginPeer(kind, fx.hs.baseUrl, peerName, passwordFor(peerName));
      fx.peers.push(fresh);
      assert.notEqual(fresh.deviceId, peer.deviceId);
      for (const { eventId } of sent) {
        const before = await fresh.waitForMessage(roomId, (m) => m.eventId === eventId);
        assert.equal(before.encrypted, true);
        assert.equal(before.decrypted, false, "the new device cannot decrypt before the import");
        assert.equal(before.body, undefined);
      }

      // Both clients check the file's MAC (keyed by the passphrase) before reading any key.
      await assert.rejects(fresh.importRoomKeys(file, "not the passphrase"), /MAC/);
      for (const { eventId } of sent) {
        const still = fresh.messages(roomId).find((m) => m.eventId === eventId);
        assert.equal(still?.decrypted, false, "a refused import decrypts nothing");
      }

      await fresh.importRoomKeys(file, "keyroom export passphrase");
      for (const { eventId, body, sessionId } of sent) {
        const after = await fresh.waitForMessage(roomId, (m) => m.eventId === eventId && m.decrypted);
        assert.equal(after.body, body);
        assert.equal(after.sender, kr.client.userId);
        assert.equal(after.encrypted, true);
        assert.equal(after.sessionId, sessionId);
      }
    });
  }
});
