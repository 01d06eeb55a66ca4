// Server-side key backup between Keyroom and matrix-js-sdk (Rust crypto: matrix-sdk-crypto-wasm)
// through the devserver, both ways: js-sdk creates the backup and uploads its keys, a new Keyroom
// device of that user restores with the backup key and reads the history; Keyroom backs up, a new
// js-sdk device of the Keyroom user restores with Keyroom's key and reads it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { MatrixClient } from "../../src/client/index.ts";
import { JsSdkPeer, PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { devServerFixture, encryptedClient, type TestClient, uniq, watch } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-backup-jssdk-");
const peers: JsSdkPeer[] = [];

async function keyroomClient(storeName: string): Promise<MatrixClient> {
  const client = encryptedClient(fx.hs, join(fx.dir, storeName));
  fx.open.push(client);
  return client;
}

async function jsUser(prefix: string): Promise<JsSdkPeer> {
  const peer = await JsSdkPeer.register(fx.hs.baseUrl, uniq(prefix), "pw");
  peers.push(peer);
  return peer;
}

/** Syncs `t` until `pred` holds; bounded by attempts (each a short long-poll), not wall time. */
async function syncUntil(t: TestClient, pred: () => boolean, what: string, attempts = 100): Promise<void> {
  for (let i = 0; i < attempts && !pred(); i++) await t.client.syncOnce({ timeoutMs: 200 });
  assert.ok(pred(), `not reached by sync: ${what}`);
}

/** The room's decrypted message bodies through `/messages`, oldest first. */
async function historyOf(client: MatrixClient, roomId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const ev of client.history(roomId)) {
    if (ev.type === "m.room.message" && typeof ev.content.body === "string") out.unshift(ev.content.body);
  }
  return out;
}

describe("key backup: Keyroom ↔ matrix-js-sdk (devserver)", () => {
  it("js-sdk backs up; a new Keyroom device of its user restores with the key and reads history", {
    timeout: PEER_TEST_TIMEOUT_MS * 2,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    try {
      const js = await jsUser("bkjs");
      const kr = watch(await keyroomClient(uniq("bkkr")), "kr", "");
      await kr.client.register({ username: uniq("bkkr"), password: "pw" });
      const roomId = await js.createRoom({ encrypted: true, invite: [kr.client.userId] });
      await syncUntil(kr, () => kr.client.getRoom(roomId)?.membership === "invite", "invited");
      await kr.client.joinRoom(roomId);
      await js.waitForMembership(roomId, kr.client.userId, "join");
      await kr.client.sendText(roomId, "from keyroom");
      await js.waitForMessage(roomId, (m) => m.body === "from keyroom");
      await js.sendText(roomId, "from js-sdk");

      const secret = await js.enableKeyBackup();
      assert.ok((await js.waitForKeyBackupUploaded()) >= 2);

      const device = await keyroomClient(uniq("bkjs-kr"));
      await device.login({ user: js.userId, password: "pw" });
      const status = await device.crypto.backup.useKey(secret.privateKey);
      assert.equal(status.version, secret.version);
      // js-sdk's device signed it, but this device has not verified that device: trusted by the key.
      assert.equal(status.trusted, true);
      assert.equal(status.trustedBy, "private_key");
      const restored = await device.crypto.backup.restore();
      assert.equal(restored.failed, 0);
      assert.ok(restored.imported >= 2, `imported ${restored.imported} of ${restored.total}`);
      assert.deepEqual(await historyOf(device, roomId), ["from keyroom", "from js-sdk"]);
    } finally {
      for (const p of peers.splice(0)) await p.close().catch(() => undefined);
    }
  });

  it("Keyroom backs up; a new js-sdk device of its user restores with Keyroom's key and reads history", {
    timeout: PEER_TEST_TIMEOUT_MS * 2,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    try {
      const name = uniq("bkkr2");
      const kr = watch(await keyroomClient(name), name, "");
      await kr.client.register({ username: name, password: "pw" });
      const js = await jsUser("bkjs2");
      const roomId = await kr.client.createRoom({ name: "backed up", invite: [js.userId] });
      await js.waitForMembership(roomId, js.userId, "invite");
      await js.join(roomId);
      await syncUntil(
        kr,
        () => kr.client.getRoom(roomId)?.getMember(js.userId)?.membership === "join",
        "js-sdk joined",
      );
      await kr.client.sendText(roomId, "keyroom's own");
      await js.waitForMessage(roomId, (m) => m.body === "keyroom's own");
      await js.sendText(roomId, "js-sdk's");
      await syncUntil(kr, () => kr.events.some((e) => e.content.body === "js-sdk's"), "js-sdk's message");

      const created = await kr.client.crypto.backup.createVersion();
      await kr.client.crypto.backup.idle();
      const status = await kr.client.crypto.backup.status();
      assert.ok(status.total >= 2);
      assert.equal(status.backedUp, status.total);

      const fresh = await JsSdkPeer.login(fx.hs.baseUrl, name, "pw");
      peers.push(fresh);
      const restored = await fresh.restoreKeyBackup({
        version: created.version,
        privateKey: created.privateKey,
      });
      assert.ok(restored.imported >= 2, `imported ${restored.imported} of ${restored.total}`);
      for (const body of ["keyroom's own", "js-sdk's"]) {
        const m = await fresh.waitForMessage(roomId, (msg) => msg.body === body);
        assert.equal(m.decrypted, true);
      }
    } finally {
      for (const p of peers.splice(0)) await p.close().catch(() => undefined);
    }
  });
});
