// A device whose crypto store is rolled back to an earlier copy (a backup of the store file, a VM
// snapshot) through the devserver: its key-ID counter is behind the keys the server still holds,
// the server refuses its next one-time keys ("One time key … already exists"), and it recovers by
// publishing new keys under later IDs, which a peer claims and starts an Olm session on.
import assert from "node:assert/strict";
import { cp, rm } from "node:fs/promises";
import { describe, it } from "node:test";
import { MatrixClient } from "../../src/client/index.ts";
import {
  devServerFixture,
  encryptedClient,
  eventById,
  newUser,
  sharedRoom,
  syncAll,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-rollback-");

describe("encrypted client (devserver): a store rolled back to an earlier copy", () => {
  it("publishes new one-time keys again after the server refuses the reused key IDs, and a peer's Olm session on one works", async () => {
    const first = await newUser(fx.hs, fx.dir, "bob");
    fx.open.push(first.client);
    await syncAll(first); // fallback key 1, one-time keys 2..51 on the server
    const session = await first.client.store.loadSession();
    assert.ok(session);
    const { userId, deviceId } = first.client;
    await first.client.close();
    const backup = `${first.storeDir}-backup`;
    await cp(first.storeDir, backup, { recursive: true });

    const carol = await fx.hs.register();
    const claimed: { keyId: string; fallback: boolean }[] = [];
    const claim = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const res = await fx.hs.api("POST", "/keys/claim", {
          token: carol.accessToken,
          body: { one_time_keys: { [userId]: { [deviceId]: "signed_curve25519" } } },
        });
        const keys: Record<string, { fallback?: boolean }> =
          res.json.one_time_keys?.[userId]?.[deviceId] ?? {};
        for (const [keyId, key] of Object.entries(keys))
          claimed.push({ keyId, fallback: key.fallback === true });
      }
    };

    // Later: peers claim 30 keys and the device publishes 30 new ones (52..81).
    await claim(30);
    const later = encryptedClient(fx.hs, first.storeDir);
    fx.open.push(later);
    await later.restore(session);
    await later.syncOnce({ timeoutMs: 0 });
    await later.close();

    // The store comes back from the backup: its counter is at 51 again, its keys 52..81 are lost.
    await rm(first.storeDir, { recursive: true, force: true });
    await cp(backup, first.storeDir, { recursive: true });
    await claim(10); // the server holds 42..51 and 52..81
    const logged: { level: string; obj: unknown; msg: string | undefined }[] = [];
    const log =
      (level: string) =>
      (obj?: unknown, msg?: string): void =>
        void logged.push({ level, obj, msg });
    const restored = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: first.storeDir } },
      logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    });
    const errors: unknown[] = [];
    restored.on("error", (e) => void errors.push(e));
    fx.open.push(restored);
    await restored.restore(session);
    const bob = watch(restored, first.name, first.storeDir);
    // Its ten new keys would be 52..61: refused, replaced by keys under later IDs, published.
    await syncAll(bob);
    const warned = logged.filter((l) => l.level === "warn");
    assert.deepEqual(
      warned.map((l) => l.obj),
      [{ request: "keys_upload" }],
      "one warning: the upload was refused once, then went through",
    );
    assert.deepEqual(errors, []);
    assert.ok(
      !JSON.stringify(logged).includes("already exists"),
      "the server's text (it quotes keys) is not logged",
    );

    // The forty keys from before come out first; then one of the new keys, not the fallback key.
    claimed.length = 0;
    await claim(41);
    assert.equal(claimed.length, 41);
    assert.deepEqual(
      claimed.filter((k) => k.fallback),
      [],
      "one-time keys are on the server again",
    );
    const fresh = claimed[40];
    assert.ok(fresh !== undefined && !claimed.slice(0, 40).some((k) => k.keyId === fresh.keyId));

    // A peer with no Olm session with the device claims one of the new keys: its room key arrives.
    const alice = await newUser(fx.hs, fx.dir, "alice");
    fx.open.push(alice.client);
    const roomId = await sharedRoom(alice, [bob]);
    const eventId = await alice.client.sendText(roomId, "after the rollback");
    await syncAll(bob);
    assert.equal(eventById(bob, eventId).content.body, "after the rollback");
  });
});
