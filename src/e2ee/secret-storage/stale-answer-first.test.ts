// We ask all our devices for a cross-signing key; one verified device answers first with a key
// that is not our published one (it kept a key of an identity replaced elsewhere). That answer is
// refused, and it must not use up the request: the right key, answered next, is still imported.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { SECRET_NAME } from "../cross-signing/private-keys.ts";
import { FakeHomeserver, TestClient } from "../test-support/fake-homeserver.ts";
import { deliverAnswerFirst, secretRequestId, verifyEachOther } from "../test-support/secret-requests.ts";

const ALICE = "@alice:example.org";

describe("a stale cross-signing key answered first", () => {
  it("is refused without consuming the request: the right answer after it is imported", async () => {
    const hs = new FakeHomeserver();
    const old = await TestClient.create(hs, { userId: ALICE, deviceId: "OLD" });
    await old.bootstrapCrossSigning();
    const fresh = await TestClient.create(hs, { userId: ALICE, deviceId: "NEW" });
    await verifyEachOther(old, fresh);

    await fresh.machine.requestSecrets([SECRET_NAME.self_signing]);
    await fresh.flush();
    const requestId = secretRequestId(hs, ALICE);
    await old.sync(); // answers with the published key over a new Olm session
    // A stale key for the same request over the same session, delivered before the right one.
    await deliverAnswerFirst(old, fresh, requestId, encodeBase64(randomBytes(32)));

    await fresh.sync();
    assert.equal((await fresh.machine.crossSigningStatus()).privateKeys.selfSigning, true);
  });
});
