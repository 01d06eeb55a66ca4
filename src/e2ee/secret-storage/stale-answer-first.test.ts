// We ask all our devices for a cross-signing key; one verified device answers first with a key
// that is not our published one (it kept a key of an identity replaced elsewhere). That answer is
// refused, and it must not use up the request: the right key, answered next, is still imported.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { SECRET_NAME } from "../cross-signing/private-keys.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";

const ALICE = "@alice:example.org";

describe("a stale cross-signing key answered first", () => {
  it("is refused without consuming the request: the right answer after it is imported", async () => {
    const hs = new FakeHomeserver();
    const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
    await old.bootstrapCrossSigning();
    const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
    for (const c of [old, fresh]) {
      await c.machine.receiveKeysChanges([ALICE], []);
      await c.flush();
    }
    await old.machine.markDeviceVerified(ALICE, "NEW");
    await fresh.machine.markDeviceVerified(ALICE, "OLD");
    await old.flush();
    await fresh.flush();

    await fresh.machine.requestSecrets([SECRET_NAME.self_signing]);
    await fresh.flush();
    const request = hs.sentToDevice.find((m) => m.eventType === "m.secret.request" && m.from === ALICE);
    const requestId = (request?.content as { request_id?: string } | undefined)?.request_id;
    assert.ok(requestId);
    await old.sync(); // answers with the published key over a new Olm session
    const inbox = hs.device(ALICE, "NEW").inbox;
    assert.equal(inbox.length, 1);
    // A stale key for the same request over the same session, delivered before the right one.
    const { request: stale } = await old.machine.encryptToDevice(
      "m.secret.send",
      [{ userId: ALICE, deviceId: "NEW" }],
      {
        request_id: requestId,
        secret: encodeBase64(randomBytes(32)),
      },
    );
    assert.ok(stale);
    await old.flush();
    assert.equal(inbox.length, 2);
    inbox.unshift(inbox.pop() as (typeof inbox)[number]);

    await fresh.sync();
    assert.equal((await fresh.machine.crossSigningStatus()).privateKeys.selfSigning, true);
  });
});
