// Answers to secret requests of our own verified devices wait for an Olm session with the device
// when there is none. m.secret.request travels unencrypted: the server can send any number of
// them, each with a new request ID, naming a verified device we cannot reach. The answers waiting
// stay within MAX_PENDING_SECRET_ANSWERS, and once the device is reachable, only those go out.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { emptyChanges } from "../machine-context.ts";
import { CLAIM_FAILURE_BACKOFF_MS } from "../machine-requests.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { MAX_PENDING_SECRET_ANSWERS } from "./gossip.ts";
import { BACKUP_SECRET } from "./names.ts";

const BOB = "@bob:x";

describe("secret requests of a verified own device we cannot reach yet", () => {
  it(`keep at most MAX_PENDING_SECRET_ANSWERS (${MAX_PENDING_SECRET_ANSWERS}) answers waiting`, async () => {
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
    const requests = MAX_PENDING_SECRET_ANSWERS * 3;
    await bob.machine.receiveSyncChanges({
      toDevice: Array.from({ length: requests }, (_, i) => ({
        type: "m.secret.request",
        sender: BOB,
        content: { action: "request", name: BACKUP_SECRET, request_id: `r${i}`, requesting_device_id: "B2" },
      })),
    });
    await bob.flush();
    const toB2 = () =>
      hs.sentToDevice.filter((m) => m.to === `${BOB}|B2` && m.eventType === "m.room.encrypted");
    assert.equal(toB2().length, 0);
    // B2 publishes keys again: the waiting answers go out, no more than the bound.
    hs.device(BOB, "B2").changed.clear();
    await b2.sync();
    now += CLAIM_FAILURE_BACKOFF_MS; // the failed claim's back-off
    await bob.flush();
    assert.equal(toB2().length, MAX_PENDING_SECRET_ANSWERS);
  });
});
