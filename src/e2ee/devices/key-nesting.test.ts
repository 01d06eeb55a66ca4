// A user's device or cross-signing keys nesting deeper than MAX_KEYS_JSON_DEPTH are refused at the
// edge. Before, keys nesting 33 to 64 levels passed their signature check and then failed the
// store's own depth check, so every sync step of everyone tracking that user threw, for good.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Account } from "../../crypto/olm/index.ts";
import { MAX_STORED_JSON_DEPTH } from "../../store/json.ts";
import { MAX_KEYS_JSON_DEPTH } from "../limits.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

/** A value that makes the object holding it (at level 1) nest `levels` levels in all. */
function filler(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 2; i < levels; i++) v = { a: v };
  return v;
}

async function setup() {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  await bob.sync();
  return { hs, bob };
}

function publishDevice(hs: FakeHomeserver, deviceId: string, levels: number): void {
  const account = Account.create();
  const { curve25519, ed25519 } = account.identityKeys;
  hs.forgeDeviceKeys(
    "@mallory:x",
    deviceId,
    signWithAccount(account, "@mallory:x", deviceId, {
      user_id: "@mallory:x",
      device_id: deviceId,
      algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
      keys: { [`curve25519:${deviceId}`]: curve25519, [`ed25519:${deviceId}`]: ed25519 },
      extra: filler(levels),
    }),
  );
}

describe("nesting of keys from /keys/query", () => {
  it("leaves room for the store's bound, with the identity record's own level", () => {
    assert.ok(MAX_KEYS_JSON_DEPTH + 1 < MAX_STORED_JSON_DEPTH);
  });

  it("keeps a device nesting MAX_KEYS_JSON_DEPTH levels, drops a deeper one, and syncs on", async () => {
    const { hs, bob } = await setup();
    publishDevice(hs, "OK", MAX_KEYS_JSON_DEPTH);
    publishDevice(hs, "DEEP", MAX_KEYS_JSON_DEPTH + 1);
    // Past our bound, within the canonical-JSON bound (64) its signature check accepts.
    publishDevice(hs, "DEEPER", MAX_STORED_JSON_DEPTH + 2);
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.sync();
    await bob.sync();
    assert.deepEqual(
      (await bob.machine.getUserDevices("@mallory:x")).map((d) => d.deviceId),
      ["OK"],
    );
  });

  it("drops a master key nesting deeper than MAX_KEYS_JSON_DEPTH, and syncs on", async () => {
    for (const [levels, kept] of [
      [MAX_KEYS_JSON_DEPTH, true],
      [MAX_KEYS_JSON_DEPTH + 1, false],
      [MAX_STORED_JSON_DEPTH + 2, false],
    ] as const) {
      const { hs, bob } = await setup();
      const key = Account.create().identityKeys.ed25519;
      hs.crossSigning.set("@mallory:x", {
        master: {
          user_id: "@mallory:x",
          usage: ["master"],
          keys: { [`ed25519:${key}`]: key },
          extra: filler(levels),
        },
      });
      publishDevice(hs, "M", 3);
      await bob.machine.updateTrackedUsers(["@mallory:x"]);
      await bob.sync();
      await bob.sync();
      assert.equal((await bob.machine.getUserIdentity("@mallory:x")) !== undefined, kept, `${levels} levels`);
      assert.equal((await bob.machine.getUserDevices("@mallory:x")).length, 1);
    }
  });
});
