// Answers to secret requests of our own verified devices wait for an Olm session with the device
// when there is none. m.secret.request travels unencrypted: the server can send any number of
// them, each with a new request ID, naming a verified device we cannot reach. The answers waiting
// stay within MAX_PENDING_SECRET_ANSWERS, and once the device is reachable, only those go out.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BOB, verifiedUnreachableOwnDevice } from "../test-support/unreachable-own-device.ts";
import { MAX_PENDING_SECRET_ANSWERS } from "./gossip.ts";
import { BACKUP_SECRET } from "./names.ts";

describe("secret requests of a verified own device we cannot reach yet", () => {
  it(`keep at most MAX_PENDING_SECRET_ANSWERS (${MAX_PENDING_SECRET_ANSWERS}) answers waiting`, async () => {
    const { bob, sentToB2, reachable } = await verifiedUnreachableOwnDevice();
    const requests = MAX_PENDING_SECRET_ANSWERS * 3;
    await bob.machine.receiveSyncChanges({
      toDevice: Array.from({ length: requests }, (_, i) => ({
        type: "m.secret.request",
        sender: BOB,
        content: { action: "request", name: BACKUP_SECRET, request_id: `r${i}`, requesting_device_id: "B2" },
      })),
    });
    await bob.flush();
    assert.equal(sentToB2(), 0);
    // B2 publishes keys again: the waiting answers go out, no more than the bound.
    await reachable();
    await bob.flush();
    assert.equal(sentToB2(), MAX_PENDING_SECRET_ANSWERS);
  });
});
