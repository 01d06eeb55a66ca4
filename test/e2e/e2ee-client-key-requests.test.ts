// A new own device asks for a room key; the older device holds the request until the user
// verifies the new one, then forwards the key and the new device reads the history.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type HeldKeyRequest, MatrixClient } from "../../src/client/index.ts";
import { devServerFixture, eventById, newUser, sharedRoom, syncAll, watch } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-key-requests-");

describe("key requests from an own device (devserver)", () => {
  it("are held and reported until the user verifies the device, then answered", async () => {
    const alice = await newUser(fx.hs, fx.dir, "alice");
    const bob = await newUser(fx.hs, fx.dir, "bob");
    fx.open.push(alice.client, bob.client);
    const roomId = await sharedRoom(alice, [bob]);
    const old = await bob.client.sendText(roomId, "said before the new device");
    await syncAll(alice);

    const newDir = join(fx.dir, `${alice.name}-new`);
    const newClient = new MatrixClient({
      homeserverUrl: fx.hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: { directory: newDir } },
    });
    fx.open.push(newClient);
    await newClient.login({ user: alice.client.userId, password: "pw" });
    const alice2 = watch(newClient, alice.name, newDir);
    await syncAll(alice2); // cannot decrypt the old message: asks Alice's other device

    const held: HeldKeyRequest[] = [];
    alice.client.on("crypto.keyRequest", (r) => void held.push(r));
    await syncAll(alice);
    assert.equal(held.length, 1);
    assert.equal(held[0]?.deviceId, newClient.deviceId);
    assert.deepEqual(alice.client.getHeldKeyRequests(), held);
    await syncAll(alice2);
    assert.equal(eventById(alice2, old).encryption?.decrypted, false, "no key before verification");

    await alice.client.verifyDevice(alice.client.userId, newClient.deviceId);
    assert.deepEqual(alice.client.getHeldKeyRequests(), []);
    // The new device accepts forwarded keys only from a device of ours it verified.
    await newClient.verifyDevice(alice.client.userId, alice.client.deviceId);
    await syncAll(alice2);
    assert.equal(eventById(alice2, old).content.body, "said before the new device");
  });
});
