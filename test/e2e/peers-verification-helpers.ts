// Set-up shared by the verification tests between Keyroom and peers we did not write
// (peers-verification-*.test.ts): pairs of devices that know each other, the SAS comparison with
// nio, and the QR exchanges with js-sdk. Everything is closed by the file's devserver fixture.
import assert from "node:assert/strict";
import {
  type VerificationRequest as JsRequest,
  VerificationPhase,
  VerificationRequestEvent,
  VerifierEvent,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { MatrixClient, VerificationRequest } from "../../src/client/index.ts";
import { type JsSdkPeer, NioPeer, type NioSas } from "../support/peers/index.ts";
import { jsSdkDevice } from "../support/peers/jssdk-devices.ts";
import { jsPhase } from "../support/peers/jssdk-verification.ts";
import { type DevServerFixture, keyroomDevice, uniq } from "./e2ee-client-helpers.ts";

export { nextKeyroomRequest } from "../support/peers/jssdk-verification.ts";

/** A Keyroom device and a js-sdk device of one user, each knowing the other's device keys. */
export async function jsSameUser(
  fx: DevServerFixture,
  prefix: string,
): Promise<{ kr: MatrixClient; js: JsSdkPeer }> {
  const name = uniq(prefix);
  const { client: kr } = await keyroomDevice(fx, name, "register");
  const js = await jsSdkDevice(fx, name, "login");
  await kr.startSync();
  await js.waitForDevices(kr.userId, (ids) => ids.includes(kr.deviceId as string));
  return { kr, js };
}

/** A Keyroom user and a js-sdk user, both cross-signed, sharing an encrypted DM. */
export async function jsDmPair(
  fx: DevServerFixture,
  prefix: string,
): Promise<{ kr: MatrixClient; js: JsSdkPeer; roomId: string }> {
  const { client: kr } = await keyroomDevice(fx, uniq(`${prefix}k`), "register");
  const js = await jsSdkDevice(fx, uniq(`${prefix}j`), "register");
  await kr.bootstrapCrossSigning({ auth: { password: "pw" } });
  await js.bootstrapCrossSigning("pw");
  const roomId = await kr.createDirectRoom(js.userId, { encrypted: true });
  await js.waitForMembership(roomId, js.userId, "invite");
  await js.join(roomId);
  await kr.startSync();
  await js.waitForDevices(kr.userId, (ids) => ids.includes(kr.deviceId as string));
  return { kr, js, roomId };
}

/** A Keyroom user and an nio user sharing an encrypted room, so that each knows the other's device. */
export async function nioPair(fx: DevServerFixture): Promise<{ kr: MatrixClient; nio: NioPeer }> {
  const { client: kr } = await keyroomDevice(fx, uniq("vn"), "register");
  const nio = await NioPeer.register(fx.hs.baseUrl, uniq("vnio"), "pw");
  fx.peers.push(nio);
  const roomId = await kr.createRoom({ encrypted: true, invite: [nio.userId] });
  await nio.waitForMembership(roomId, nio.userId, "invite");
  await nio.join(roomId);
  await nio.waitForDevices(kr.userId, (ids) => ids.includes(kr.deviceId as string));
  await kr.startSync();
  return { kr, nio };
}

/** Waits until both sides show the SAS of `txn` and checks that they show the same. */
export async function nioSasShown(nio: NioPeer, txn: string, ours: VerificationRequest): Promise<void> {
  const [theirs, state] = await Promise.all([
    nio.waitForSas((s) => s.transactionId === txn && (s.emoji !== null || s.canceled)),
    ours.waitFor((s) => s.sas?.decimals !== undefined || s.phase === "cancelled"),
  ]);
  assert.equal(theirs.canceled, false, `nio cancelled: ${theirs.cancelCode}`);
  assert.equal(state.cancel, undefined);
  // Symbols, not names: nio names some emoji differently from the spec ("Wrench" for "Spanner").
  const bare = (e: string) => e.replace(/\uFE0F/g, "");
  assert.deepEqual(
    theirs.emoji?.map(bare),
    state.sas?.emoji?.map((e) => bare(e.emoji)),
  );
  assert.deepEqual(theirs.decimals, state.sas?.decimals);
}

/** Compares the SAS of `txn`, confirms on both sides and checks that both ends are verified. */
export async function nioCompareAndConfirm(
  nio: NioPeer,
  txn: string,
  ours: VerificationRequest,
): Promise<void> {
  await nioSasShown(nio, txn, ours);
  await ours.confirm();
  await nio.confirmSas(txn);
  const done = await nio.waitForSas((s) => s.transactionId === txn && (s.verified || s.canceled));
  assert.equal(done.verified, true, `nio: ${done.cancelCode}`);
  const end = await ours.finished();
  assert.equal(end.phase, "done", JSON.stringify(end.cancel));
}

/** Syncs nio until its verification `txn` is cancelled; returns it. */
export function nioCancelled(nio: NioPeer, txn: string): Promise<NioSas> {
  return nio.waitForSas((s) => s.transactionId === txn && (s.canceled || s.verified));
}

/** Keyroom's trust in a device of `userId` (the device must be known). */
export async function keyroomTrust(kr: MatrixClient, userId: string, deviceId: string): Promise<string> {
  const device = (await kr.getUserDevices(userId)).find((d) => d.deviceId === deviceId);
  assert.ok(device, `Keyroom does not know ${userId} ${deviceId}`);
  return device.trust;
}

/**
 * A ready request pair: Keyroom shows its code, js-sdk scans it and Keyroom confirms the scan; both
 * end done. Returns the code.
 */
export async function keyroomShowsQr(ours: VerificationRequest, theirs: JsRequest): Promise<Uint8Array> {
  const bytes = await ours.qrBytes();
  assert.ok(bytes, "Keyroom has a code to show");
  const verifier = await theirs.scanQRCode(Uint8ClampedArray.from(bytes));
  // Settled into a value at once, so that a step failing before it is awaited leaves no rejection
  // unhandled; awaited below, where its failure fails the test.
  const verified = verifier.verify().then(
    () => undefined,
    (e: unknown) => e,
  );
  await ours.waitFor((s) => s.qr === "reciprocated" || s.phase === "cancelled");
  await ours.confirmQrScanned();
  const failure = await verified;
  if (failure !== undefined) throw failure;
  const end = await ours.finished();
  assert.equal(end.phase, "done", JSON.stringify(end.cancel));
  await jsPhase(theirs, VerificationPhase.Done);
  return bytes;
}

/**
 * A ready request pair: js-sdk shows its code, Keyroom scans it and js-sdk confirms the scan; both
 * end done. Returns the code.
 */
export async function jsShowsQr(ours: VerificationRequest, theirs: JsRequest): Promise<Uint8ClampedArray> {
  const code = await theirs.generateQRCode();
  assert.ok(code, "js-sdk has a code to show");
  const confirmed = new Promise<void>((resolve, reject) => {
    const check = () => {
      const v = theirs.verifier;
      if (v === undefined) return;
      theirs.off(VerificationRequestEvent.Change, check);
      v.once(VerifierEvent.ShowReciprocateQr, (cb) => cb.confirm());
      void v.verify().then(resolve, reject);
    };
    theirs.on(VerificationRequestEvent.Change, check);
    check();
  });
  await ours.scanQr(Uint8Array.from(code));
  await confirmed;
  const end = await ours.finished();
  assert.equal(end.phase, "done", JSON.stringify(end.cancel));
  await jsPhase(theirs, VerificationPhase.Done);
  return code;
}
