// A forwarded room key is taken only from a verified device of our own. A device of ours that is
// cross-signed by our trusted identity is verified (as it is for secrets): a new device set up with
// the recovery key takes the forwards of our old device with no trust call. A device we do not
// trust through cross-signing (our identity not trusted here), or one we blacklisted, is refused.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeHomeserver, joined, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";
const ROOM = "!room:example.org";

/**
 * OLD bootstraps cross-signing and holds the only copy of a room key; NEW gets cross-signed (it
 * signs itself with our cross-signing keys, as recovery gives them, or OLD verifies it and signs
 * it, leaving NEW without our keys), asks for the room key, and OLD forwards it.
 */
async function forwarded(signedBy: "itself" | "old", blacklistOld = false) {
  const hs = new FakeHomeserver();
  const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
  await old.bootstrapCrossSigning();
  const event = await old.sendMessage(ROOM, joined(ALICE), "before NEW existed");
  const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
  await fresh.machine.receiveKeysChanges([ALICE], []);
  await fresh.flush();
  if (signedBy === "itself") {
    await fresh.machine.importCrossSigningKeys(await old.machine.exportCrossSigningKeys());
    await fresh.machine.receiveKeysChanges([ALICE], []);
    await fresh.flush(); // NEW signs itself
  } else {
    await old.machine.receiveKeysChanges([ALICE], []);
    await old.flush();
    await old.machine.markDeviceVerified(ALICE, "NEW");
    await old.flush(); // uploads its signature of NEW
    await old.machine.setDeviceTrust(ALICE, "NEW", "unset"); // verified through cross-signing only
    await fresh.machine.receiveKeysChanges([ALICE], []);
    await fresh.flush();
  }
  if (blacklistOld) await fresh.machine.setDeviceTrust(ALICE, "OLD", "blacklisted");
  await old.sync(); // OLD learns that NEW is cross-signed
  await assert.rejects(fresh.machine.decryptRoomEvent(event, ROOM), { code: "UNKNOWN_SESSION" });
  await fresh.flush();
  await old.sync();
  const sent = hs.sentToDevice.filter(
    (m) =>
      m.eventType === "m.room.encrypted" &&
      m.to === `${ALICE}|NEW` &&
      m.content.sender_key === old.machine.identityKeys.curve25519,
  );
  assert.equal(sent.length, 1, "OLD forwards the key to NEW, cross-signed");
  return fresh.sync();
}

describe("forwards from a device of ours cross-signed by our trusted identity", () => {
  it("are taken with no trust call, once our identity is trusted here (recovery)", async () => {
    const synced = await forwarded("itself");
    assert.equal(synced.redecrypted.length, 1);
    assert.equal(synced.redecrypted[0]?.content.body, "before NEW existed");
    assert.equal(synced.redecrypted[0]?.forwarded, true);
  });

  it("are refused while our identity is not trusted here (no master key, not verified)", async () => {
    const synced = await forwarded("old");
    assert.equal(synced.redecrypted.length, 0);
  });

  it("are refused from a device we blacklisted, cross-signed or not", async () => {
    const synced = await forwarded("itself", true);
    assert.equal(synced.redecrypted.length, 0);
  });
});
