// SAS verification between Keyroom and matrix-js-sdk (Rust crypto, the engine inside Element) that
// does not succeed: one side says the short strings differ (`m.mismatched_sas`) or cancels
// (`m.user`), in both directions, over to-device and in a DM, also after the other side already
// confirmed. The flow ends cancelled on both sides with the sender's code, the side that did not
// cancel learns it was the other, and neither side marks the other's device (or identity) verified.
// After a cancel, a fresh verification of the same device succeeds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type VerificationRequest as JsRequest,
  type ShowSasCallbacks,
  VerificationPhase,
  type Verifier,
  VerifierEvent,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { MatrixClient, VerificationRequest } from "../../src/client/index.ts";
import { type JsSdkPeer, PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { jsPhase, nextJsRequest, nextKeyroomRequest, sasBoth } from "../support/peers/jssdk-verification.ts";
import { devServerFixture } from "./e2ee-client-helpers.ts";
import { jsDmPair, jsSameUser, keyroomTrust } from "./peers-verification-helpers.ts";

const fx = devServerFixture("keyroom-verify-cancel-jssdk-");

interface Flow {
  ours: VerificationRequest;
  theirs: JsRequest;
  verifier: Verifier;
}

/** Keyroom requests (to-device, or in the DM when `userId` is another user) and starts SAS. */
async function keyroomStarts(kr: MatrixClient, js: JsSdkPeer, deviceId?: string): Promise<Flow> {
  const incoming = nextJsRequest(js);
  const ours = await kr.requestVerification(js.userId, deviceId);
  const theirs = await incoming;
  await theirs.accept();
  await ours.waitFor((s) => s.phase === "ready");
  await ours.startSas();
  await jsPhase(theirs, VerificationPhase.Started);
  return { ours, theirs, verifier: theirs.verifier as Verifier };
}

/** js-sdk requests (to-device with Keyroom's device, or in the DM) and starts SAS. */
async function jsStarts(kr: MatrixClient, js: JsSdkPeer, roomId?: string): Promise<Flow> {
  const crypto = js.client.getCrypto();
  assert.ok(crypto);
  const incoming = nextKeyroomRequest(kr);
  const theirs =
    roomId === undefined
      ? await crypto.requestDeviceVerification(kr.userId, kr.deviceId as string)
      : await crypto.requestVerificationDM(kr.userId, roomId);
  const ours = await incoming;
  await ours.accept();
  await jsPhase(theirs, VerificationPhase.Ready);
  const verifier = await theirs.startVerification("m.sas.v1");
  return { ours, theirs, verifier };
}

/**
 * Runs js-sdk's verifier until both sides show the SAS and checks they show the same. Returns the
 * verifier's callbacks and its `verify()` (which rejects when the flow is cancelled).
 */
async function sasShown(flow: Flow): Promise<{ cb: ShowSasCallbacks; verifying: Promise<void> }> {
  const shown = new Promise<ShowSasCallbacks>((resolve) =>
    flow.verifier.once(VerifierEvent.ShowSas, resolve),
  );
  const verifying = flow.verifier.verify();
  verifying.catch(() => undefined); // awaited by the test; a cancel must not go unhandled before
  const [cb, state] = await Promise.all([
    shown,
    flow.ours.waitFor((s) => s.sas?.decimals !== undefined || s.phase === "cancelled"),
  ]);
  assert.equal(state.cancel, undefined);
  assert.deepEqual(cb.sas.decimal, state.sas?.decimals);
  return { cb, verifying };
}

/** Keyroom's flow ended cancelled by js-sdk with `code`, verifying nothing. */
async function keyroomCancelledByThem(ours: VerificationRequest, code: string): Promise<void> {
  const end = await ours.finished();
  assert.equal(end.phase, "cancelled");
  assert.deepEqual({ code: end.cancel?.code, byUs: end.cancel?.byUs }, { code, byUs: false });
  assert.equal(end.verified, undefined);
}

/** js-sdk's flow ended cancelled by Keyroom with `code`. */
async function jsCancelledByThem(flow: Flow, verifying: Promise<void>, code: string): Promise<void> {
  await assert.rejects(verifying, new RegExp(`cancelled by them with code ${code.replace(/\./g, "\\.")}`));
  await jsPhase(flow.theirs, VerificationPhase.Cancelled);
  assert.equal(flow.theirs.cancellationCode, code);
}

/** Neither device of one user marks the other verified. */
async function devicesUnverified(kr: MatrixClient, js: JsSdkPeer): Promise<void> {
  const status = await js.client.getCrypto()?.getDeviceVerificationStatus(kr.userId, kr.deviceId as string);
  assert.ok(status);
  assert.equal(status.localVerified, false);
  assert.equal(await keyroomTrust(kr, js.userId, js.deviceId), "unset");
}

/** Neither user marks the other's identity or device verified. */
async function usersUnverified(kr: MatrixClient, js: JsSdkPeer): Promise<void> {
  const jsView = await js.client.getCrypto()?.getUserVerificationStatus(kr.userId);
  assert.equal(jsView?.isVerified(), false);
  const krView = await kr.getUserIdentity(js.userId);
  assert.ok(krView);
  assert.equal(krView.verified, false);
  assert.equal(await keyroomTrust(kr, js.userId, js.deviceId), "unset");
  const device = await js.client.getCrypto()?.getDeviceVerificationStatus(kr.userId, kr.deviceId as string);
  assert.equal(device?.isVerified(), false);
}

describe("verification cancelled by js-sdk: Keyroom ↔ matrix-js-sdk (devserver)", () => {
  it("to-device: js-sdk says the SAS differs, Keyroom ends with m.mismatched_sas", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js } = await jsSameUser(fx, "vcja");
    const flow = await keyroomStarts(kr, js, js.deviceId);
    const { cb, verifying } = await sasShown(flow);
    cb.mismatch();
    await keyroomCancelledByThem(flow.ours, "m.mismatched_sas");
    await assert.rejects(verifying, /cancelled by us with code m\.mismatched_sas/);
    assert.equal(flow.theirs.cancellationCode, "m.mismatched_sas");
    await devicesUnverified(kr, js);
  });

  it("DM: js-sdk says the SAS differs after Keyroom confirmed, Keyroom ends with m.mismatched_sas", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js, roomId } = await jsDmPair(fx, "vcjb");
    const flow = await jsStarts(kr, js, roomId);
    const { cb, verifying } = await sasShown(flow);
    await flow.ours.confirm();
    cb.mismatch();
    await keyroomCancelledByThem(flow.ours, "m.mismatched_sas");
    await assert.rejects(verifying, /cancelled by us with code m\.mismatched_sas/);
    await usersUnverified(kr, js);
  });

  it("to-device: js-sdk cancels at the SAS (m.user), then a new verification succeeds", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js } = await jsSameUser(fx, "vcjc");
    const flow = await keyroomStarts(kr, js, js.deviceId);
    const { cb, verifying } = await sasShown(flow);
    cb.cancel();
    await keyroomCancelledByThem(flow.ours, "m.user");
    await assert.rejects(verifying, /cancelled by us with code m\.user/);
    await devicesUnverified(kr, js);

    const again = await keyroomStarts(kr, js, js.deviceId);
    assert.notEqual(again.ours.flowId, flow.ours.flowId);
    await sasBoth(again.verifier, again.ours);
    await jsPhase(again.theirs, VerificationPhase.Done);
    const status = await js.client.getCrypto()?.getDeviceVerificationStatus(kr.userId, kr.deviceId as string);
    assert.equal(status?.localVerified, true);
    assert.equal(await keyroomTrust(kr, js.userId, js.deviceId), "verified");
    assert.equal(flow.ours.phase, "cancelled");
  });
});

describe("verification cancelled by Keyroom: Keyroom ↔ matrix-js-sdk (devserver)", () => {
  for (const action of ["mismatch", "cancel"] as const) {
    const code = action === "mismatch" ? "m.mismatched_sas" : "m.user";
    it(`to-device: Keyroom ${action === "mismatch" ? "says the SAS differs" : "cancels"} after js-sdk confirmed, js-sdk ends with ${code}`, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, ["js-sdk"])) return;
      const { kr, js } = await jsSameUser(fx, "vcjd");
      const flow = await jsStarts(kr, js);
      const { cb, verifying } = await sasShown(flow);
      await cb.confirm();
      await flow.ours[action]();
      assert.equal(flow.ours.phase, "cancelled");
      assert.deepEqual(
        { code: flow.ours.cancellation?.code, byUs: flow.ours.cancellation?.byUs },
        { code, byUs: true },
      );
      await jsCancelledByThem(flow, verifying, code);
      await devicesUnverified(kr, js);
      assert.equal(flow.ours.verified, undefined);
    });
  }

  it("DM: Keyroom says the SAS differs, js-sdk ends with m.mismatched_sas from Keyroom's user", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js } = await jsDmPair(fx, "vcje");
    const flow = await keyroomStarts(kr, js);
    const { verifying } = await sasShown(flow);
    await flow.ours.mismatch();
    assert.deepEqual(
      { code: flow.ours.cancellation?.code, byUs: flow.ours.cancellation?.byUs },
      { code: "m.mismatched_sas", byUs: true },
    );
    await jsCancelledByThem(flow, verifying, "m.mismatched_sas");
    assert.equal(flow.theirs.cancellingUserId, kr.userId);
    await usersUnverified(kr, js);
  });
});
