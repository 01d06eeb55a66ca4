// SAS verification between Keyroom and matrix-nio (libolm) that does not succeed: one side says the
// short strings differ (`m.mismatched_sas`) or cancels (`m.user`), in both directions, even after
// the other side already confirmed. The flow ends cancelled on both sides with the sender's code and
// neither side marks the other's device verified. A cancel from nio in the middle of the exchange
// does not keep Keyroom from verifying the same device afterwards.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { devServerFixture } from "./e2ee-client-helpers.ts";
import {
  keyroomTrust,
  nextKeyroomRequest,
  nioCancelled,
  nioCompareAndConfirm,
  nioPair,
  nioSasShown,
} from "./peers-verification-helpers.ts";

const fx = devServerFixture("keyroom-verify-cancel-nio-");

describe("verification cancelled: Keyroom ↔ matrix-nio (devserver)", () => {
  it("nio says the SAS differs after Keyroom confirmed: cancelled with m.mismatched_sas", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["nio"])) return;
    const { kr, nio } = await nioPair(fx);
    const ours = await kr.startSasVerification(nio.userId, nio.deviceId);
    const { transactionId: txn } = await nio.waitForSas((s) => !s.weStarted && s.userId === kr.userId);
    await nio.acceptSas(txn);
    await nioSasShown(nio, txn, ours);
    await ours.confirm();
    await nio.rejectSas(txn);
    const end = await ours.finished();
    assert.equal(end.phase, "cancelled");
    assert.equal(end.cancel?.code, "m.mismatched_sas");
    assert.equal(end.cancel?.byUs, false);
    assert.equal(end.verified, undefined);
    const theirs = await nioCancelled(nio, txn);
    assert.equal(theirs.canceled, true);
    assert.equal(theirs.cancelCode, "m.mismatched_sas");
    assert.equal(await nio.deviceVerified(kr.userId, kr.deviceId as string), false);
    assert.equal(await keyroomTrust(kr, nio.userId, nio.deviceId), "unset");
  });

  for (const action of ["mismatch", "cancel"] as const) {
    const code = action === "mismatch" ? "m.mismatched_sas" : "m.user";
    it(`Keyroom ${action === "mismatch" ? "says the SAS differs" : "cancels"} after nio confirmed: nio sees ${code}`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, ["nio"])) return;
      const { kr, nio } = await nioPair(fx);
      const incoming = nextKeyroomRequest(kr);
      const txn = await nio.startSas(kr.userId, kr.deviceId as string);
      const ours = await incoming;
      await ours.accept();
      await nioSasShown(nio, txn, ours);
      await nio.confirmSas(txn);
      await ours[action]();
      assert.equal(ours.phase, "cancelled");
      assert.deepEqual(
        { code: ours.cancellation?.code, byUs: ours.cancellation?.byUs },
        { code, byUs: true },
      );
      const theirs = await nioCancelled(nio, txn);
      assert.equal(theirs.canceled, true);
      assert.equal(theirs.verified, false);
      assert.equal(theirs.receivedCancelCode, code);
      assert.equal(await nio.deviceVerified(kr.userId, kr.deviceId as string), false);
      assert.equal(await keyroomTrust(kr, nio.userId, nio.deviceId), "unset");
      assert.equal(ours.verified, undefined);
    });
  }

  it("nio cancels after accepting, before the keys: m.user, and a new SAS then succeeds", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["nio"])) return;
    const { kr, nio } = await nioPair(fx);
    const first = await kr.startSasVerification(nio.userId, nio.deviceId);
    const { transactionId: txn } = await nio.waitForSas((s) => !s.weStarted && s.userId === kr.userId);
    // nio sends its accept and does not sync again: Keyroom's key stays unread on the server.
    await nio.acceptSas(txn);
    const waiting = await first.waitFor((s) => s.sas?.stage !== "awaiting_accept" || s.phase === "cancelled");
    assert.equal(waiting.sas?.stage, "awaiting_key");
    await nio.cancelSas(txn);
    const end = await first.finished();
    assert.equal(end.phase, "cancelled");
    assert.deepEqual({ code: end.cancel?.code, byUs: end.cancel?.byUs }, { code: "m.user", byUs: false });
    assert.equal(await keyroomTrust(kr, nio.userId, nio.deviceId), "unset");

    const second = await kr.startSasVerification(nio.userId, nio.deviceId);
    assert.notEqual(second.flowId, first.flowId);
    const { transactionId: txn2 } = await nio.waitForSas(
      (s) => !s.weStarted && s.userId === kr.userId && s.transactionId !== txn,
    );
    assert.equal(txn2, second.flowId);
    await nio.acceptSas(txn2);
    await nioCompareAndConfirm(nio, txn2, second);
    assert.equal(await nio.deviceVerified(kr.userId, kr.deviceId as string), true);
    assert.equal(await keyroomTrust(kr, nio.userId, nio.deviceId), "verified");
    assert.equal(first.phase, "cancelled");
  });
});
