// An answer to a secret request of our own verified device waits when there is no Olm session
// with that device yet. If the device loses its verification meanwhile (blacklisted, or set back
// to unverified), the waiting answer must not go out once the device becomes reachable.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DeviceTrust } from "../../store/records.ts";
import { BOB, verifiedUnreachableOwnDevice } from "../test-support/unreachable-own-device.ts";
import { BACKUP_SECRET } from "./names.ts";

async function answersAfterTrust(trust: DeviceTrust): Promise<number> {
  const { bob, sentToB2, reachable } = await verifiedUnreachableOwnDevice();
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
  assert.equal(sentToB2(), 0);
  await bob.machine.setDeviceTrust(BOB, "B2", trust);
  await reachable();
  await bob.flush();
  return sentToB2();
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
