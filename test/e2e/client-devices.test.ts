// The account's own devices through the devserver: list (with E2EE trust), rename, and delete
// with User-Interactive Authentication.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ClientError, MatrixClient, MatrixError } from "../../src/client/index.ts";
import { devServerFixture, encryptedClient, uniq } from "./e2ee-client-helpers.ts";

const fx = devServerFixture("keyroom-devices-");

describe("own devices (devserver)", () => {
  it("lists, renames, and deletes devices with the password; the current device is refused", async () => {
    const name = uniq("dev");
    const first = encryptedClient(fx.hs, join(fx.dir, `${name}-1`));
    fx.open.push(first);
    const { userId } = await first.register({ username: name, password: "pw" });
    const second = encryptedClient(fx.hs, join(fx.dir, `${name}-2`));
    fx.open.push(second);
    await second.login({ user: userId, password: "pw" });
    await first.syncOnce({ timeoutMs: 0 });

    const listed = await first.devices.list();
    assert.deepEqual(listed.map((d) => d.deviceId).sort(), [first.deviceId, second.deviceId].sort());
    assert.equal(listed.find((d) => d.current)?.deviceId, first.deviceId);
    const other = listed.find((d) => d.deviceId === second.deviceId);
    assert.equal(other?.e2ee?.trust, "unset", "the other device's keys and trust come with it");
    assert.equal(other?.e2ee?.ed25519, second.getFingerprint());

    await first.devices.rename(second.deviceId, "laptop");
    assert.equal((await first.devices.get(second.deviceId))?.displayName, "laptop");
    assert.equal(await first.devices.get("NOSUCHDEVICE"), undefined);

    await assert.rejects(first.devices.delete([first.deviceId], { password: "pw" }), (e: unknown) => {
      return e instanceof ClientError && e.code === "CANNOT_DELETE_CURRENT_DEVICE";
    });
    await assert.rejects(first.devices.delete([second.deviceId], { password: "wrong" }), (e: unknown) => {
      return e instanceof MatrixError && e.errcode === "M_FORBIDDEN";
    });
    await first.devices.delete([second.deviceId], { password: "pw" });
    assert.deepEqual(
      (await first.devices.list()).map((d) => d.deviceId),
      [first.deviceId],
    );
    // The deleted device's token no longer works.
    await assert.rejects(second.syncOnce({ timeoutMs: 0 }), (e: unknown) => {
      return e instanceof MatrixError && e.errcode === "M_UNKNOWN_TOKEN";
    });
  });

  it("lets the application answer the challenge itself", async () => {
    const name = uniq("uia");
    const first = new MatrixClient({ homeserverUrl: fx.hs.baseUrl, syncTimeoutMs: 0 });
    fx.open.push(first);
    const { userId } = await first.register({ username: name, password: "pw" });
    const second = new MatrixClient({ homeserverUrl: fx.hs.baseUrl, syncTimeoutMs: 0 });
    fx.open.push(second);
    await second.login({ user: userId, password: "pw" });
    const offered: string[][] = [];
    await first.devices.delete([second.deviceId], async (challenge) => {
      offered.push(...challenge.flows.map((f) => f.stages));
      return { type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password: "pw" };
    });
    assert.deepEqual(offered, [["m.login.password"]]);
    assert.equal((await first.devices.list()).length, 1);
  });
});
