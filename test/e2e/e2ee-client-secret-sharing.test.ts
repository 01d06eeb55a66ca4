// Secret sharing between two Keyroom devices of one user through the devserver: once the new
// device and the old one verified each other with SAS, the new device asks for the cross-signing
// keys and the backup key, gets them over Olm, becomes cross-signed and uses the backup without
// any recovery key.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  devServerFixture,
  encryptedClient,
  newUser,
  type TestClient,
  until,
  verifyWithSas,
  watch,
} from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-e2ee-gossip-");

describe("secret sharing between Keyroom devices (devserver)", () => {
  it("after SAS the new device asks for the cross-signing and backup keys, is cross-signed and uses the backup", async () => {
    const old: TestClient = await newUser(fx.hs, fx.dir, "gs");
    fx.open.push(old.client);
    await old.client.bootstrapCrossSigning();
    const { version } = await old.client.crypto.backup.createVersion();
    const storeDir = join(fx.dir, `${old.name}-new`);
    const client = encryptedClient(fx.hs, storeDir);
    fx.open.push(client);
    await client.login({ user: old.client.userId, password: "pw" });
    const fresh = watch(client, old.name, storeDir);
    assert.deepEqual((await fresh.client.getCrossSigningStatus()).privateKeys, {
      master: false,
      selfSigning: false,
      userSigning: false,
    });
    await old.client.startSync();
    await fresh.client.startSync();
    try {
      await verifyWithSas(fresh.client, old.client);

      await until("the cross-signing keys to arrive", async () => {
        const s = await fresh.client.getCrossSigningStatus();
        return s.privateKeys.master && s.privateKeys.selfSigning && s.privateKeys.userSigning;
      });
      await until("the new device to be cross-signed", async () => {
        return (await fresh.client.getCrossSigningStatus()).deviceCrossSigned;
      });
      const status = await fresh.client.getCrossSigningStatus();
      assert.equal(status.verified, true);
      // The backup key came too: this device now uses the backup.
      await until("the backup key to arrive", async () => (await fresh.client.crypto.backup.status()).hasKey);
      const backup = await fresh.client.crypto.backup.status();
      assert.equal(backup.version, version);
      assert.equal(backup.trusted, true);
      // The old device sees the new one cross-signed by the shared identity.
      await until("the old device to see the new one cross-signed", async () => {
        const devices = await old.client.getUserDevices(old.client.userId);
        return devices.find((d) => d.deviceId === fresh.client.deviceId)?.crossSigned === true;
      });
    } finally {
      await old.client.stopSync();
      await fresh.client.stopSync();
    }
  });
});
