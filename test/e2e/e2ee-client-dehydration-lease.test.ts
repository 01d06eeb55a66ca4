// Dehydration on a crypto store shared by two clients of one device (two processes, or a bot and
// its admin script): rehydrating imports room keys, so it must take the store's lease like every
// other unit of work. Without it, its save was refused (`StoreLockedError("STALE")`) whenever the
// other client had written since, and rehydration failed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { randomBytes } from "../../src/crypto/primitives/index.ts";
import {
  devServerFixture,
  encryptedClient,
  fixtureUser,
  sharedRoom,
  syncAll,
  texts,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-dehydration-lease-");

describe("dehydration on a shared crypto store", () => {
  it("rehydrates after the other client on the store wrote to it", async () => {
    const alice = await fixtureUser(fx, "dla");
    const bob = await fixtureUser(fx, "dlb");
    await alice.client.bootstrapCrossSigning();
    await bob.client.bootstrapCrossSigning();
    const roomId = await sharedRoom(alice, [bob]);
    const bobId = bob.client.userId;
    const key = randomBytes(32);
    await bob.client.crypto.dehydration.create(key);
    await syncAll(alice);
    await bob.client.logout();
    await syncAll(alice);
    await alice.client.sendText(roomId, "while you were away");

    // Bob logs in again; a second client of that device shares its store.
    const storeDir = join(fx.dir, `${bob.name}-2`);
    const back = encryptedClient(fx.hs, storeDir);
    fx.open.push(back);
    await back.login({ user: bobId, password: "pw" });
    const session = await back.store.loadSession();
    assert.ok(session);
    const twin = encryptedClient(fx.hs, storeDir);
    fx.open.push(twin);
    await twin.restore(session);
    await twin.syncOnce({ timeoutMs: 0 }); // the twin writes to the store

    const watched = watch(back, bob.name, storeDir);
    const result = await back.crypto.dehydration.rehydrate(key);
    assert.ok((result?.imported ?? 0) >= 1);
    await back.syncOnce({ timeoutMs: 0 });
    assert.deepEqual(texts(watched, roomId), ["while you were away"]);

    // Replacing it too (it reads our own keys anew, which the engine saves).
    await twin.syncOnce({ timeoutMs: 0 });
    await twin.crypto.bootstrapCrossSigning({ reset: true, auth: { password: "pw" } });
    const created = await back.crypto.dehydration.create(key);
    assert.equal(created.crossSigned, true);
  });
});
