// `encryption.store` as a factory: the client opens the store once the server named the device,
// owns it (closes it on close and logout), and a factory that fails leaves no stray device.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ClientCryptoError, MatrixClient } from "../../src/client/index.ts";
import { type CryptoStore, MemoryCryptoStore } from "../../src/store/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";
import { uniq } from "./e2ee-client-helpers.ts";

let hs: TestDevServer;
before(async () => {
  hs = await startTestDevServer();
});
after(async () => {
  await hs.close();
});

/** Counts closes of the stores it opens. */
function trackingFactory() {
  const opened: { userId: string; deviceId: string; closed: boolean }[] = [];
  const factory = async (account: { userId: string; deviceId: string }): Promise<CryptoStore> => {
    const store = await MemoryCryptoStore.open(account);
    const entry = { ...account, closed: false };
    opened.push(entry);
    const close = store.close.bind(store);
    store.close = async () => {
      entry.closed = true;
      await close();
    };
    return store;
  };
  return { factory, opened };
}

async function devicesOf(userId: string): Promise<string[]> {
  const probe = await hs.api("POST", "/login", {
    body: { type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password: "pw" },
  });
  const listed = await hs.api("GET", "/devices", { token: probe.json.access_token });
  return (listed.json.devices as { device_id: string }[])
    .map((d) => d.device_id)
    .filter((d) => d !== probe.json.device_id);
}

describe("encryption.store as a factory (devserver)", () => {
  it("is called with the new device, and its store is closed by close() and by logout()", async () => {
    const { factory, opened } = trackingFactory();
    const client = new MatrixClient({
      homeserverUrl: hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: factory },
    });
    const name = uniq("fay");
    const info = await client.register({ username: name, password: "pw" });
    assert.deepEqual(
      opened.map(({ userId, deviceId }) => ({ userId, deviceId })),
      [{ userId: info.userId, deviceId: info.deviceId }],
    );
    await client.syncOnce({ timeoutMs: 0 });
    assert.ok(client.getFingerprint().length > 0, "encryption runs on the factory's store");
    await client.close();
    assert.equal(opened[0]?.closed, true);

    const again = new MatrixClient({
      homeserverUrl: hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: factory },
    });
    await again.login({ user: info.userId, password: "pw" });
    assert.equal(opened.length, 2);
    await again.logout();
    assert.equal(opened[1]?.closed, true);
  });

  it("a factory that throws fails the login with a typed error and logs the new device out", async () => {
    const name = uniq("fritz");
    const setup = new MatrixClient({ homeserverUrl: hs.baseUrl, syncTimeoutMs: 0 });
    const { userId } = await setup.register({ username: name, password: "pw" });
    await setup.logout();
    const failing = new MatrixClient({
      homeserverUrl: hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: {
        store: () => {
          throw new Error("disk full");
        },
      },
    });
    const err = await failing.login({ user: userId, password: "pw" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ClientCryptoError);
    assert.equal(err.code, "STORE_FACTORY_FAILED");
    assert.deepEqual(await devicesOf(userId), [], "no stray device is left behind");
    await failing.close();
  });

  it("restoreDeviceId needs a store it can read before login, not a factory", async () => {
    const { factory } = trackingFactory();
    const client = new MatrixClient({
      homeserverUrl: hs.baseUrl,
      syncTimeoutMs: 0,
      encryption: { store: factory, restoreDeviceId: true },
    });
    await assert.rejects(client.login({ user: `@${uniq("rae")}:${hs.serverName}`, password: "pw" }), {
      code: "RESTORE_NEEDS_STORE",
    });
    await client.close();
  });
});
