// A Keyroom client created with `encryption` talks to matrix-js-sdk (Rust crypto, vodozemac) and
// matrix-nio (libolm) through the devserver: both directions in an encrypted room, and a key
// export written by the other client imports into a fresh Keyroom device and decrypts history.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { MatrixClient } from "../../src/client/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import {
  closePeers,
  PEER_KINDS,
  PEER_TEST_TIMEOUT_MS,
  type Peer,
  registerPeer,
  skipUnlessAvailable,
} from "../support/peers/index.ts";
import { encryptedClient, type TestClient, uniq, watch } from "./e2ee-client-helpers.ts";

let hs: TestDevServer;
let dir: string;
const clients: MatrixClient[] = [];
const peers: Peer[] = [];

before(async () => {
  hs = await startTestDevServer();
  dir = await mkdtemp(join(tmpdir(), "keyroom-e2ee-interop-"));
});
after(async () => {
  await closePeers(peers);
  for (const c of clients) await c.close().catch(() => undefined);
  await hs.close();
  await rm(dir, { recursive: true, force: true });
});

/** Syncs `t` until `pred` holds; bounded by attempts (each a short long-poll), not wall time. */
async function syncUntil(t: TestClient, pred: () => boolean, what: string, attempts = 100): Promise<void> {
  for (let i = 0; i < attempts && !pred(); i++) await t.client.syncOnce({ timeoutMs: 200 });
  assert.ok(pred(), `not reached by sync: ${what}`);
}

async function keyroomUser(prefix: string): Promise<TestClient> {
  const name = uniq(prefix);
  const storeDir = join(dir, name);
  const client = encryptedClient(hs, storeDir);
  clients.push(client);
  await client.register({ username: name, password: "pw" });
  return watch(client, name, storeDir);
}

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
      const peer = await registerPeer(kind, hs.baseUrl, uniq(`peer${kind.replace("-", "")}`), "pw");
      peers.push(peer);
      const kr = await keyroomUser("kr");

      const roomId = await kr.client.createRoom({ name: `with ${kind}`, invite: [peer.userId] });
      await peer.waitForMembership(roomId, peer.userId, "invite");
      await peer.join(roomId);
      await syncUntil(
        kr,
        () => kr.client.getRoom(roomId)?.getMember(peer.userId)?.membership === "join",
        "peer joined",
      );

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
      const freshDir = join(dir, `${kr.name}-fresh`);
      const freshClient = encryptedClient(hs, freshDir);
      clients.push(freshClient);
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
