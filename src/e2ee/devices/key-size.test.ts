// A device's keys larger than MAX_DEVICE_KEYS_JSON_LENGTH are refused at the edge. Before, any size
// was stored and held in memory: the `unsigned` part is not signed, so any server on the way could
// pad a device's keys up to the whole response, for each of a user's devices.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Account } from "../../crypto/olm/index.ts";
import { signWithAccount } from "../signing.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_DEVICE_KEYS_JSON_LENGTH } from "./validate.ts";

/** Device keys, validly self-signed, whose JSON is `length` characters long. */
function deviceOfLength(deviceId: string, length: number) {
  const account = Account.create();
  const { curve25519, ed25519 } = account.identityKeys;
  const signed = signWithAccount(account, "@mallory:x", deviceId, {
    user_id: "@mallory:x",
    device_id: deviceId,
    algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
    keys: { [`curve25519:${deviceId}`]: curve25519, [`ed25519:${deviceId}`]: ed25519 },
  });
  // Padding outside the signed part, as a server on the way could add it.
  const base = JSON.stringify({ ...signed, unsigned: { pad: "" } }).length;
  const keys = { ...signed, unsigned: { pad: "x".repeat(length - base) } };
  assert.equal(JSON.stringify(keys).length, length);
  return keys;
}

describe("size of device keys from /keys/query", () => {
  it("keeps a device of MAX_DEVICE_KEYS_JSON_LENGTH characters, drops a larger one", async () => {
    const hs = new FakeHomeserver();
    const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
    hs.forgeDeviceKeys("@mallory:x", "FITS", deviceOfLength("FITS", MAX_DEVICE_KEYS_JSON_LENGTH));
    hs.forgeDeviceKeys("@mallory:x", "LARGE", deviceOfLength("LARGE", MAX_DEVICE_KEYS_JSON_LENGTH + 1));
    await bob.machine.updateTrackedUsers(["@mallory:x"]);
    await bob.flush();
    assert.equal(bob.machine.hasOutdatedUsers(["@mallory:x"]), false);
    assert.deepEqual(
      (await bob.machine.getUserDevices("@mallory:x")).map((d) => d.deviceId),
      ["FITS"],
    );
  });
});
