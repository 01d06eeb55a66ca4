// A key imported from an export file or a backup keeps up to MAX_FORWARDING_CHAIN + 1 chain entries
// (what a key forwarded to us over Olm keeps: its chain and the forwarder). Forwarded on as it was,
// that chain was one longer than a forwarded key may carry, so our own other devices (and any client
// with the same bound) refused the forward and the key could never move on: a forward now carries
// the chain's last MAX_FORWARDING_CHAIN entries.
import assert from "node:assert/strict";
import { it } from "node:test";
import { MAX_FORWARDING_CHAIN } from "../limits.ts";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:x";

it("a key imported with the longest chain we keep is forwarded to our other device, which takes it", async () => {
  const hs = new FakeHomeserver();
  const bob = await TestClient.create(hs, { userId: "@bob:x", deviceId: "B" });
  const event = await bob.sendMessage(ROOM, joined("@bob:x"), "kept on one device only");
  const [key] = await bob.machine.exportRoomKeys([ROOM]);
  assert.ok(key);
  const chain = Array.from({ length: MAX_FORWARDING_CHAIN + 1 }, (_, i) => `${"k".repeat(42)}${i % 10}`);

  const a1 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A1" });
  await a1.machine.importRoomKeys([{ ...key, forwarding_curve25519_key_chain: chain }]);
  const [kept] = await a1.machine.exportRoomKeys([ROOM]);
  assert.equal(kept?.forwarding_curve25519_key_chain.length, MAX_FORWARDING_CHAIN + 1);

  const a2 = await TestClient.create(hs, { userId: "@alice:x", deviceId: "A2" });
  await a1.sync();
  await a2.sync();
  await a1.machine.setDeviceTrust("@alice:x", "A2", "verified");
  await a2.machine.setDeviceTrust("@alice:x", "A1", "verified");
  await assert.rejects(a2.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
  await a2.flush();
  await a1.sync(); // answers
  const synced = await a2.sync();
  assert.equal(synced.redecrypted[0]?.content.body, "kept on one device only");
  const [received] = await a2.machine.exportRoomKeys([ROOM]);
  // The last MAX_FORWARDING_CHAIN entries we held, then A1 (the forwarder).
  assert.deepEqual(
    received?.forwarding_curve25519_key_chain.slice(0, -1),
    chain.slice(-MAX_FORWARDING_CHAIN),
  );
});
