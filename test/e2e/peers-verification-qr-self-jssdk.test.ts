// QR verification between two devices of one user, Keyroom and matrix-js-sdk (Rust crypto,
// vodozemac) through the devserver: the self-verifying modes of the spec's QR format. Mode 0x01 is
// shown by the device that trusts the master key (it holds the cross-signing keys), mode 0x02 by the
// device that does not trust it yet. Each mode is shown once by Keyroom and once by js-sdk, the
// other side scanning. Afterwards the new device is cross-signed, as each side's own API reports.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type VerificationRequest as JsRequest,
  VerificationPhase,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { MatrixClient, VerificationRequest } from "../../src/client/index.ts";
import { type JsSdkPeer, PEER_TEST_TIMEOUT_MS, skipUnlessAvailable } from "../support/peers/index.ts";
import { jsSdkDevice } from "../support/peers/jssdk-devices.ts";
import { jsPhase, nextJsRequest, nextKeyroomRequest } from "../support/peers/jssdk-verification.ts";
import { devServerFixture, keyroomDevice, settledUntil, uniq } from "./e2ee-client-helpers.ts";
import { jsShowsQr, keyroomShowsQr } from "./peers-verification-helpers.ts";

const fx = devServerFixture("keyroom-qr-self-jssdk-");

/** The mode byte of a QR code's payload: "MATRIX", the version byte, then the mode. */
const modeOf = (bytes: Uint8Array | Uint8ClampedArray): number | undefined => bytes[7];

/** Keyroom's view of its own device `deviceId` of its user, once known. */
async function ownDevice(kr: MatrixClient, deviceId: string) {
  return (await kr.getUserDevices(kr.userId)).find((d) => d.deviceId === deviceId);
}

interface Pair {
  kr: MatrixClient;
  js: JsSdkPeer;
  /** Keyroom's and js-sdk's side of one to-device request, both ready. */
  ours: VerificationRequest;
  theirs: JsRequest;
}

/**
 * One user with a Keyroom device and a js-sdk device, each knowing the other's device keys; the
 * device that exists first holds the cross-signing keys. The new device asks the old one to verify.
 */
async function selfPair(keysOn: "keyroom" | "js-sdk"): Promise<Pair> {
  const name = uniq(keysOn === "keyroom" ? "qsk" : "qsj");
  let kr: MatrixClient;
  let js: JsSdkPeer;
  if (keysOn === "keyroom") {
    ({ client: kr } = await keyroomDevice(fx, name, "register"));
    await kr.bootstrapCrossSigning({ auth: { password: "pw" } });
    js = await jsSdkDevice(fx, name, "login");
  } else {
    js = await jsSdkDevice(fx, name, "register");
    await js.bootstrapCrossSigning("pw");
    ({ client: kr } = await keyroomDevice(fx, name, "login"));
  }
  await kr.startSync();
  await js.waitForDevices(kr.userId, (ids) => ids.includes(kr.deviceId));
  await settledUntil(kr, async () => (await ownDevice(kr, js.deviceId)) !== undefined);
  const crypto = js.client.getCrypto();
  assert.ok(crypto);
  // Both know the cross-signing identity; only the old device trusts it.
  await settledUntil(kr, async () => (await kr.getCrossSigningStatus()).masterKey !== undefined);
  assert.equal((await kr.getCrossSigningStatus()).verified, keysOn === "keyroom");
  assert.equal(
    (await crypto.getUserVerificationStatus(kr.userId)).isCrossSigningVerified(),
    keysOn === "js-sdk",
  );

  let ours: VerificationRequest;
  let theirs: JsRequest;
  if (keysOn === "keyroom") {
    const incoming = nextKeyroomRequest(kr);
    theirs = await crypto.requestDeviceVerification(kr.userId, kr.deviceId);
    ours = await incoming;
    assert.equal(ours.otherDeviceId, js.deviceId);
    await ours.accept();
    await jsPhase(theirs, VerificationPhase.Ready);
  } else {
    const incoming = nextJsRequest(js);
    ours = await kr.requestVerification(kr.userId, js.deviceId);
    theirs = await incoming;
    assert.equal(theirs.otherDeviceId, kr.deviceId);
    await theirs.accept();
    await ours.waitFor((s) => s.phase === "ready");
  }
  return { kr, js, ours, theirs };
}

const keyroomShows = ({ ours, theirs }: Pair) => keyroomShowsQr(ours, theirs);
const jsShows = ({ ours, theirs }: Pair) => jsShowsQr(ours, theirs);

/** The js-sdk device is cross-signed and js-sdk trusts it through its (now trusted) identity. */
async function jsDeviceCrossSigned({ kr, js }: Pair): Promise<void> {
  await js.waitForDeviceStatus(js.userId, js.deviceId, (s) => s.signedByOwner && s.crossSigningVerified);
  await js.waitForDeviceStatus(kr.userId, kr.deviceId, (s) => s.crossSigningVerified);
  await settledUntil(kr, async () => (await ownDevice(kr, js.deviceId))?.crossSigned === true);
  assert.equal((await ownDevice(kr, js.deviceId))?.verified, true);
}

/** The Keyroom device is cross-signed (it sees its own signature) and trusts its identity. */
async function keyroomDeviceCrossSigned({ kr, js }: Pair): Promise<void> {
  await settledUntil(kr, async () => (await kr.getCrossSigningStatus()).deviceCrossSigned);
  assert.equal((await kr.getCrossSigningStatus()).verified, true);
  assert.equal((await ownDevice(kr, js.deviceId))?.verified, true);
  await js.waitForDeviceStatus(kr.userId, kr.deviceId, (s) => s.signedByOwner && s.crossSigningVerified);
}

describe("QR self-verification: Keyroom ↔ matrix-js-sdk, one user (devserver)", () => {
  it("mode 0x01 shown by Keyroom (holds the keys), js-sdk (new) scans", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const pair = await selfPair("keyroom");
    assert.equal(modeOf(await keyroomShows(pair)), 0x01);
    await jsDeviceCrossSigned(pair);
  });

  it("mode 0x02 shown by js-sdk (new), Keyroom (holds the keys) scans", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const pair = await selfPair("keyroom");
    assert.equal(modeOf(await jsShows(pair)), 0x02);
    await jsDeviceCrossSigned(pair);
  });

  it("mode 0x01 shown by js-sdk (holds the keys), Keyroom (new) scans", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const pair = await selfPair("js-sdk");
    assert.equal(modeOf(await jsShows(pair)), 0x01);
    await keyroomDeviceCrossSigned(pair);
  });

  it("mode 0x02 shown by Keyroom (new), js-sdk (holds the keys) scans", {
    timeout: PEER_TEST_TIMEOUT_MS,
  }, async (t) => {
    if (skipUnlessAvailable(t, ["js-sdk"])) return;
    const pair = await selfPair("js-sdk");
    assert.equal(modeOf(await keyroomShows(pair)), 0x02);
    await keyroomDeviceCrossSigned(pair);
  });
});
