// An Olm-encrypted verification request that comes for a virtual user while it starts: its
// to-device message is decrypted before `user()` returns (it could be a room key; which it is is
// known only once decrypted), yet the request reaches the verification flow only once `user()` has
// given the client, as a plaintext one does: the handlers put on then see it as `toDevice`
// (decrypted) and as `verification.request`. Devserver; Ann, another virtual user, sends it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { VerificationRequest } from "../client/index.ts";
import type { ToDeviceEvent } from "../wire/index.ts";
import { startingUserFixture } from "./test-support/starting-user.ts";

const NEW_USER = "@v_verified:localhost";

describe("an Olm-encrypted verification request for a virtual user that is starting", () => {
  /** Olm-encrypted to-device messages for the new user in transactions the appservice handled. */
  let encryptedToNewUser = 0;
  const inTxns = new Set<string>();
  const fx = startingUserFixture("verifying", "v_verified", (txn) => {
    encryptedToNewUser += txn.toDevice.filter(
      (m) => m.to_user_id === NEW_USER && m.type === "m.room.encrypted",
    ).length;
    for (const ev of txn.events) inTxns.add(ev.event_id);
  });

  it("reaches the verification.request handler put on once user() returned", async () => {
    const { ann, starting, roomId } = await fx.startHeld();
    // Ann's message sets up her Olm session with the new user's device (its room key goes in it).
    await ann.sendText(roomId, "hello");
    const [device] = await ann.getUserDevices(NEW_USER);
    assert.ok(device);
    const { request } = await ann.crypto.machine.encryptToDevice(
      "m.key.verification.request",
      [{ userId: NEW_USER, deviceId: device.deviceId }],
      {
        from_device: ann.deviceId,
        methods: ["m.sas.v1"],
        timestamp: Date.now(),
        transaction_id: "olm-flow",
      },
    );
    assert.ok(request, "sent over the Olm session");
    await ann.crypto.flush();
    await fx.handled.until(() => encryptedToNewUser >= 2);

    fx.releaseStart();
    const client = await starting;
    const toDevice: ToDeviceEvent[] = [];
    client.on("toDevice", (event) => {
      toDevice.push(event);
    });
    const requested = new Promise<VerificationRequest>((resolve) => {
      client.on("verification.request", resolve);
    });
    assert.deepEqual(client.getVerificationRequests(), [], "not taken before its caller had the client");

    const afterId = await ann.sendText(roomId, "after your start");
    await fx.handled.until(() => inTxns.has(afterId));
    const seen = toDevice.filter((e) => e.type === "m.key.verification.request");
    assert.equal(seen.length, 1, "its to-device event reached the handler put on then, once");
    assert.ok(seen[0]?.encryption, "as decrypted");
    const incoming = await requested;
    assert.equal(incoming.otherUserId, ann.userId);
    assert.equal(incoming.otherDeviceId, ann.deviceId);
    assert.equal(incoming.incoming, true);
  });
});
