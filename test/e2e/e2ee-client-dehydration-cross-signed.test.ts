// MSC3814: a dehydrated device MUST be cross-signed, and clients share room keys with no other
// (matrix-rust-sdk refuses to create one without the self-signing key, matrix-js-sdk to start).
// A device of ours without our self-signing key (a login not yet recovered, or one whose identity
// was reset elsewhere, rotating on its schedule) uploaded an unsigned device anyway, and the server
// replaced the good dehydrated device, with the keys queued for it, by a useless one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DehydrationError } from "../../src/client/index.ts";
import { randomBytes } from "../../src/crypto/primitives/index.ts";
import { devServerFixture, encryptedClient, fixtureUser } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-dehydration-cross-signed-");

describe("a dehydrated device is uploaded cross-signed only", () => {
  it("a device without our self-signing key gets NOT_CROSS_SIGNED and leaves the device on the server", async () => {
    const bob = await fixtureUser(fx, "dcs");
    await bob.client.bootstrapCrossSigning();
    const key = randomBytes(32);
    const good = await bob.client.crypto.dehydration.create(key);
    assert.equal(good.crossSigned, true);

    const second = encryptedClient(fx.hs, join(fx.dir, `${bob.name}-2`));
    fx.open.push(second);
    await second.login({ user: bob.client.userId, password: "pw" });
    await assert.rejects(
      second.crypto.dehydration.create(randomBytes(32)),
      (e) => e instanceof DehydrationError && e.code === "NOT_CROSS_SIGNED",
    );
    await assert.rejects(
      second.crypto.dehydration.start({ key, rehydrate: false }),
      (e) => e instanceof DehydrationError && e.code === "NOT_CROSS_SIGNED",
    );
    assert.equal(second.crypto.dehydration.running, false);
    // The cross-signed device is still the one on the server.
    assert.equal((await second.crypto.dehydration.rehydrate(key))?.deviceId, good.deviceId);
  });
});
