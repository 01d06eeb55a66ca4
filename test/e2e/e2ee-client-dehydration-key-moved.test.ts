// The dehydration key in secret storage after the recovery key changed without the old one
// (`changeRecoveryKey()`, or `resetIdentity()`): it stays stored under the retired key only. Starting
// dehydration with the new key then threw `SECRET_NOT_ENCRYPTED_FOR_KEY` on every login, for good;
// the rust-sdk takes a secret not stored under its key as absent and stores a new one.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DehydrationError } from "../../src/client/index.ts";
import { devServerFixture, fixtureUser } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-dehydration-key-moved-");

describe("dehydration after the recovery key changed", () => {
  it("start() with the new key stores a new dehydration key under it and replaces the device", async () => {
    const bob = await fixtureUser(fx, "dkm");
    await bob.client.bootstrapCrossSigning();
    const old = await bob.client.crypto.recovery.enable();
    const oldKey = await bob.client.crypto.secretStorage.unlock({ recoveryKey: old.recoveryKey });
    await bob.client.crypto.dehydration.start({ secretStorageKey: oldKey });
    bob.client.crypto.dehydration.stop();
    const first = await bob.client.crypto.dehydration.keyFromSecretStorage(oldKey);

    // The old recovery key is forgotten: a new one, without it (the dehydration key is not carried).
    const changed = await bob.client.crypto.recovery.changeRecoveryKey();
    const newKey = await bob.client.crypto.secretStorage.unlock({ recoveryKey: changed.recoveryKey });
    const reported: unknown[] = [];
    bob.client.on("error", (e) => {
      reported.push(e);
    });
    assert.equal(await bob.client.crypto.dehydration.start({ secretStorageKey: newKey }), undefined);
    bob.client.crypto.dehydration.stop();
    // The device sealed under the old dehydration key is reported and replaced.
    assert.ok(reported.some((e) => e instanceof DehydrationError && e.code === "WRONG_KEY"));
    const second = await bob.client.crypto.dehydration.keyFromSecretStorage(newKey);
    assert.notDeepEqual(second, first);
    assert.ok((await bob.client.crypto.dehydration.rehydrate(second)) !== undefined);
  });
});
