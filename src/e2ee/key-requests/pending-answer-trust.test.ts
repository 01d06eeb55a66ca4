// A key request of our own verified device waits when there is no Olm session with it yet. If the
// device loses its verification meanwhile (blacklisted, or its trust unset), the waiting answer
// must not go out once the device becomes reachable.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import type { DeviceTrust } from "../../store/records.ts";
import { CLAIM_FAILURE_BACKOFF_MS } from "../machine-requests.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:x";

async function answersAfterTrust(trust: DeviceTrust): Promise<number> {
  const hs = new FakeHomeserver();
  let now = 1_700_000_000_000;
  const a1 = await TestClient.create(hs, { userId: ALICE, deviceId: "A1", now: () => now });
  const a2 = await TestClient.create(hs, { userId: ALICE, deviceId: "A2" });
  await a1.machine.receiveKeysChanges([ALICE], []);
  await a1.flush();
  await a1.machine.setDeviceTrust(ALICE, "A2", "verified");
  const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
  const sender = encodeBase64(randomBytes(32));
  await a1.machine.importRoomKeys([
    {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: "!r:x",
      sender_key: sender,
      session_id: session.sessionId,
      session_key: session.exportAt(0),
      sender_claimed_keys: { ed25519: sender },
      forwarding_curve25519_key_chain: [],
    },
  ]);
  // A2 has no one-time or fallback key on the server: no Olm session can be started with it.
  hs.exhaustOneTimeKeys(ALICE, "A2");
  hs.device(ALICE, "A2").fallback = undefined;
  await a1.machine.receiveSyncChanges({
    toDevice: [
      {
        type: "m.room_key_request",
        sender: ALICE,
        content: {
          action: "request",
          request_id: "r1",
          requesting_device_id: "A2",
          body: { algorithm: "m.megolm.v1.aes-sha2", room_id: "!r:x", session_id: session.sessionId },
        },
      },
    ],
  });
  await a1.flush();
  const toA2 = () =>
    hs.sentToDevice.filter((m) => m.to === `${ALICE}|A2` && m.eventType === "m.room.encrypted");
  assert.equal(toA2().length, 0);
  await a1.machine.setDeviceTrust(ALICE, "A2", trust);
  // A2 publishes keys again: an Olm session can now be started.
  hs.device(ALICE, "A2").changed.clear();
  await a2.sync();
  now += CLAIM_FAILURE_BACKOFF_MS; // the failed claim's back-off
  await a1.flush();
  return toA2().length;
}

describe("a waiting room-key answer to a device that lost its verification", () => {
  it("is sent when the device is still verified", async () => {
    assert.equal(await answersAfterTrust("verified"), 1);
  });
  it("is dropped once the device is blacklisted", async () => {
    assert.equal(await answersAfterTrust("blacklisted"), 0);
  });
  it("is dropped once the device's trust is unset", async () => {
    assert.equal(await answersAfterTrust("unset"), 0);
  });
});
