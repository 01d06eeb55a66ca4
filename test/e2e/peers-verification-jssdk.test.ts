// Interactive verification between Keyroom and matrix-js-sdk (Rust crypto, the engine inside
// Element) through the devserver: SAS over to-device between two devices of one user, and SAS in a
// DM between two users, each side requesting and starting once. Afterwards each side's own API
// reports the other verified.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type VerificationRequest as JsRequest,
  VerificationPhase,
  type Verifier,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { VerificationRequest } from "../../src/client/index.ts";
import { PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { jsSdkDevice } from "../support/peers/jssdk-devices.ts";
import { jsPhase, nextJsRequest, nextKeyroomRequest, sasBoth } from "../support/peers/jssdk-verification.ts";
import { devServerFixture, keyroomDevice, uniq } from "./e2ee-client-helpers.ts";
import { jsDmPair, jsSameUser, jsShowsQr, keyroomShowsQr } from "./peers-verification-helpers.ts";

const fx = devServerFixture("keyroom-verify-jssdk-");

describe("verification: Keyroom ↔ matrix-js-sdk (devserver)", () => {
  it("SAS over to-device, same user: Keyroom requests and starts", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js } = await jsSameUser(fx, "vja");
    const incoming = nextJsRequest(js);
    const ours = await kr.requestVerification(kr.userId, js.deviceId);
    const theirs = await incoming;
    assert.equal(theirs.otherDeviceId, kr.deviceId);
    await theirs.accept();
    await ours.waitFor((s) => s.phase === "ready");
    await ours.startSas();
    await jsPhase(theirs, VerificationPhase.Started);
    await sasBoth(theirs.verifier as Verifier, ours);
    await jsPhase(theirs, VerificationPhase.Done);
    const status = await js.client.getCrypto()?.getDeviceVerificationStatus(kr.userId, kr.deviceId as string);
    assert.equal(status?.localVerified, true);
    const devices = await kr.getUserDevices(kr.userId);
    assert.equal(devices.find((d) => d.deviceId === js.deviceId)?.trust, "verified");
  });

  it("SAS over to-device, same user: js-sdk requests and starts", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const name = uniq("vjb");
    const js = await jsSdkDevice(fx, name, "register");
    const { client: kr } = await keyroomDevice(fx, name, "login");
    await kr.startSync();
    await js.waitForDevices(kr.userId, (ids) => ids.includes(kr.deviceId as string));
    const incoming = nextKeyroomRequest(kr);
    const theirs = await js.client.getCrypto()?.requestDeviceVerification(kr.userId, kr.deviceId as string);
    assert.ok(theirs);
    const ours = await incoming;
    assert.equal(ours.otherDeviceId, js.deviceId);
    await ours.accept();
    await jsPhase(theirs, VerificationPhase.Ready);
    const verifier = await theirs.startVerification("m.sas.v1");
    await sasBoth(verifier, ours);
    await jsPhase(theirs, VerificationPhase.Done);
    const status = await js.client.getCrypto()?.getDeviceVerificationStatus(kr.userId, kr.deviceId as string);
    assert.equal(status?.localVerified, true);
    const devices = await kr.getUserDevices(kr.userId);
    assert.equal(devices.find((d) => d.deviceId === js.deviceId)?.trust, "verified");
  });

  // `strict`: Keyroom's room gives its keys to verified devices only; js-sdk's device is not one
  // until the flow ends, and still reads the flow's events (their session is the flow's own).
  for (const [keyroomStarts, strict] of [
    [true, false],
    [false, false],
    [true, true],
  ] as const) {
    const title = `SAS in a DM between users: ${keyroomStarts ? "Keyroom" : "js-sdk"} requests and starts`;
    it(strict ? `${title}, Keyroom's room on shareWith "verified"` : title, {
      timeout: PEER_TEST_TIMEOUT_MS,
    }, async (t) => {
      if (skipUnlessAvailable(t, ["js-sdk"])) return;
      const { kr, js, roomId } = await jsDmPair(fx, "vjc");
      if (strict) await kr.setRoomTrustRequirements(roomId, { shareWith: "verified" });
      let ours: VerificationRequest;
      let theirs: JsRequest;
      let verifier: Verifier;
      if (keyroomStarts) {
        const incoming = nextJsRequest(js);
        ours = await kr.requestVerification(js.userId);
        assert.equal(ours.roomId, roomId);
        theirs = await incoming;
        await theirs.accept();
        await ours.waitFor((s) => s.phase === "ready");
        await ours.startSas();
        await jsPhase(theirs, VerificationPhase.Started);
        verifier = theirs.verifier as Verifier;
      } else {
        const incoming = nextKeyroomRequest(kr);
        const req = await js.client.getCrypto()?.requestVerificationDM(kr.userId, roomId);
        assert.ok(req);
        theirs = req;
        ours = await incoming;
        assert.equal(ours.roomId, roomId);
        await ours.accept();
        await jsPhase(theirs, VerificationPhase.Ready);
        verifier = await theirs.startVerification("m.sas.v1");
      }
      await sasBoth(verifier, ours);
      await jsPhase(theirs, VerificationPhase.Done);
      const jsView = await js.client.getCrypto()?.getUserVerificationStatus(kr.userId);
      assert.equal(jsView?.isVerified(), true);
      const krView = await kr.getUserIdentity(js.userId);
      assert.equal(krView?.verified, true);
    });
  }
});

describe("QR verification: Keyroom ↔ matrix-js-sdk (devserver)", () => {
  const dmPair = () => jsDmPair(fx, "vq");

  it("Keyroom shows its code, js-sdk scans it", { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js } = await dmPair();
    const incoming = nextJsRequest(js);
    const ours = await kr.requestVerification(js.userId);
    const theirs = await incoming;
    await theirs.accept();
    await ours.waitFor((s) => s.phase === "ready");
    const bytes = await keyroomShowsQr(ours, theirs);
    assert.equal(bytes[7], 0x00, "mode: verifying another user");
    assert.equal((await kr.getUserIdentity(js.userId))?.verified, true);
    assert.equal((await js.client.getCrypto()?.getUserVerificationStatus(kr.userId))?.isVerified(), true);
  });

  it("js-sdk shows its code, Keyroom scans it", { timeout: PEER_TEST_TIMEOUT_MS }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const { kr, js, roomId } = await dmPair();
    const incoming = nextKeyroomRequest(kr);
    const theirs = await js.client.getCrypto()?.requestVerificationDM(kr.userId, roomId);
    assert.ok(theirs);
    const ours = await incoming;
    await ours.accept();
    await jsPhase(theirs, VerificationPhase.Ready);
    const code = await jsShowsQr(ours, theirs);
    assert.equal(code[7], 0x00, "mode: verifying another user");
    assert.equal((await kr.getUserIdentity(js.userId))?.verified, true);
    assert.equal((await js.client.getCrypto()?.getUserVerificationStatus(kr.userId))?.isVerified(), true);
  });
});
