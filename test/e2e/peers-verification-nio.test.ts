// SAS verification between Keyroom and matrix-nio (libolm) over to-device, in the flow nio uses (a
// start without a request, legacy `hkdf-hmac-sha256` MACs), both directions. Afterwards each side
// reports the other device verified.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { devServerFixture } from "./e2ee-client-helpers.ts";
import {
  keyroomTrust,
  nextKeyroomRequest,
  nioCompareAndConfirm,
  nioPair,
} from "./peers-verification-helpers.ts";

const fx = devServerFixture("keyroom-verify-nio-");

describe("verification: Keyroom ↔ matrix-nio, start without request (devserver)", () => {
  it("Keyroom starts SAS, nio accepts", { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    if (skipUnlessAvailable(t, ["nio"])) return;
    const { kr, nio } = await nioPair(fx);
    const ours = await kr.startSasVerification(nio.userId, nio.deviceId);
    const incoming = await nio.waitForSas((s) => !s.weStarted && s.userId === kr.userId);
    await nio.acceptSas(incoming.transactionId);
    await nioCompareAndConfirm(nio, incoming.transactionId, ours);
    assert.equal(await nio.deviceVerified(kr.userId, kr.deviceId as string), true);
    assert.equal(await keyroomTrust(kr, nio.userId, nio.deviceId), "verified");
  });

  it("nio starts SAS, Keyroom accepts", { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    if (skipUnlessAvailable(t, ["nio"])) return;
    const { kr, nio } = await nioPair(fx);
    const incoming = nextKeyroomRequest(kr);
    const txn = await nio.startSas(kr.userId, kr.deviceId as string);
    const ours = await incoming;
    assert.equal(ours.flowId, txn);
    assert.equal(ours.snapshot.sas?.stage, "accept_pending");
    await ours.accept();
    await nioCompareAndConfirm(nio, txn, ours);
    assert.equal(await nio.deviceVerified(kr.userId, kr.deviceId as string), true);
    assert.equal(await keyroomTrust(kr, nio.userId, nio.deviceId), "verified");
  });
});
