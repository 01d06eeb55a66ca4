// An answer to a secret request of our own verified device waits when there is no Olm session
// with that device yet. If the device loses its verification meanwhile (blacklisted, or set back
// to unverified), the waiting answer must not go out once the device becomes reachable.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import type { DeviceTrust } from "../../store/records.ts";
import { emptyChanges } from "../machine-context.ts";
import { CLAIM_FAILURE_BACKOFF_MS } from "../machine-requests.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { BACKUP_SECRET } from "./names.ts";

const BOB = "@bob:x";

async function answersAfterTrust(trust: DeviceTrust): Promise<number> {
  const hs = new FakeHomeserver();
  let now = 1_700_000_000_000;
  const bob = await TestClient.create(hs, { userId: BOB, deviceId: "B", now: () => now });
  await bob.store.saveChanges({
    ...emptyChanges(),
    secrets: { [BACKUP_SECRET]: encodeBase64(randomBytes(32)) },
  });
  await bob.restart();
  const b2 = await TestClient.create(hs, { userId: BOB, deviceId: "B2" });
  await bob.machine.updateTrackedUsers([BOB]);
  await bob.flush();
  await bob.machine.setDeviceTrust(BOB, "B2", "verified");
  // B2 has no one-time or fallback key on the server: no Olm session can be started with it.
  hs.exhaustOneTimeKeys(BOB, "B2");
  hs.device(BOB, "B2").fallback = undefined;
  await bob.machine.receiveSyncChanges({
    toDevice: [
      {
        type: "m.secret.request",
        sender: BOB,
        content: { action: "request", name: BACKUP_SECRET, request_id: "r1", requesting_device_id: "B2" },
      },
    ],
  });
  await bob.flush();
  const toB2 = () =>
    hs.sentToDevice.filter((m) => m.to === `${BOB}|B2` && m.eventType === "m.room.encrypted");
  assert.equal(toB2().length, 0);
  await bob.machine.setDeviceTrust(BOB, "B2", trust);
  // B2 publishes keys again: an Olm session can now be started.
  hs.device(BOB, "B2").changed.clear();
  await b2.sync();
  now += CLAIM_FAILURE_BACKOFF_MS; // the failed claim's back-off
  await bob.flush();
  return toB2().length;
}

describe("a waiting secret answer to a device that lost its verification", () => {
  it("is sent when the device is still verified", async () => {
    assert.equal(await answersAfterTrust("verified"), 1);
  });
  it("is dropped once the device is blacklisted", async () => {
    assert.equal(await answersAfterTrust("blacklisted"), 0);
  });
  it("is dropped once the device is no longer verified", async () => {
    assert.equal(await answersAfterTrust("unset"), 0);
  });
});
