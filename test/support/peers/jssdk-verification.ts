// Driving js-sdk's side of an interactive verification against Keyroom in tests: wait for requests
// and phases, and run SAS on both sides (compare, confirm).
import assert from "node:assert/strict";
import {
  CryptoEvent,
  type VerificationRequest as JsRequest,
  VerificationPhase,
  VerificationRequestEvent,
  type Verifier,
  VerifierEvent,
} from "matrix-js-sdk/lib/crypto-api/index.js";
import type { MatrixClient, VerificationRequest } from "../../../src/client/index.ts";
import type { JsSdkPeer } from "./jssdk.ts";

export function nextKeyroomRequest(client: MatrixClient): Promise<VerificationRequest> {
  return new Promise((resolve) => {
    const off = client.on("verification.request", (r) => {
      off();
      resolve(r);
    });
  });
}

export function nextJsRequest(peer: JsSdkPeer): Promise<JsRequest> {
  return new Promise((resolve) => {
    const on = (r: JsRequest) => {
      peer.client.off(CryptoEvent.VerificationRequestReceived, on);
      resolve(r);
    };
    peer.client.on(CryptoEvent.VerificationRequestReceived, on);
  });
}

export function jsPhase(req: JsRequest, phase: VerificationPhase): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (req.phase === VerificationPhase.Cancelled && phase !== VerificationPhase.Cancelled) {
        req.off(VerificationRequestEvent.Change, check);
        reject(new Error(`js-sdk request cancelled: ${req.cancellationCode}`));
      } else if (req.phase >= phase) {
        req.off(VerificationRequestEvent.Change, check);
        resolve();
      }
    };
    req.on(VerificationRequestEvent.Change, check);
    check();
  });
}

/** Runs js-sdk's SAS verifier; compares its SAS with Keyroom's and confirms on both sides. */
export async function sasBoth(verifier: Verifier, ours: VerificationRequest): Promise<void> {
  const shown = new Promise<Parameters<Parameters<typeof verifier.on<VerifierEvent.ShowSas>>[1]>[0]>(
    (resolve) => {
      verifier.once(VerifierEvent.ShowSas, resolve);
    },
  );
  const verified = verifier.verify();
  const [cb, state] = await Promise.all([
    shown,
    ours.waitFor((s) => s.sas?.decimals !== undefined || s.phase === "cancelled"),
  ]);
  assert.equal(state.cancel, undefined);
  assert.deepEqual(cb.sas.decimal, state.sas?.decimals);
  // js-sdk and Keyroom both offer emoji: seven, the same on both sides.
  assert.equal(cb.sas.emoji?.length, 7);
  assert.deepEqual(
    cb.sas.emoji?.map(([, name]) => name),
    state.sas?.emoji?.map((e) => e.description),
  );
  await Promise.all([ours.confirm(), cb.confirm()]);
  await verified;
  const end = await ours.finished();
  assert.equal(end.phase, "done", JSON.stringify(end.cancel));
}
