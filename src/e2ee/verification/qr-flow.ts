/**
 * The QR half of a flow: the code we show (mode chosen from who we verify and whether we trust our
 * master key) and the checks of a code we scan, per the spec's three modes.
 */
import { constantTimeEqual, decodeBase64, encodeBase64, randomBytes } from "../../crypto/primitives/index.ts";
import { type CancelCode, QR_SECRET_LENGTH } from "./constants.ts";
import type { VerificationEnv, VerifiedKeys } from "./env.ts";
import type { QrCodeData, QrMode } from "./qr-code.ts";

export type QrCheck =
  | { readonly ok: true; readonly verified: VerifiedKeys }
  | { readonly ok: false; readonly code: CancelCode; readonly reason: string };

/** The code we show for this flow, or undefined when we lack the keys it needs. */
export function qrToShow(
  env: VerificationEnv,
  flowId: string,
  otherUser: string,
  otherDevice: string | undefined,
): QrCodeData | undefined {
  const secret = encodeBase64(randomBytes(QR_SECRET_LENGTH));
  const ourMaster = env.masterKey(env.userId);
  if (otherUser !== env.userId) {
    const theirMaster = env.masterKey(otherUser);
    // Our master key goes in as ours only when this device trusts it (the scanner verifies it).
    if (ourMaster === undefined || theirMaster === undefined || !env.ownMasterTrusted) return undefined;
    return { mode: 0, flowId, key1: ourMaster, key2: theirMaster, secret };
  }
  if (ourMaster === undefined) return undefined;
  if (env.ownMasterTrusted) {
    const theirKey = otherDevice === undefined ? undefined : env.deviceKey(otherUser, otherDevice);
    if (theirKey === undefined) return undefined;
    return { mode: 1, flowId, key1: ourMaster, key2: theirKey, secret };
  }
  return { mode: 2, flowId, key1: env.ed25519, key2: ourMaster, secret };
}

/** What the shower learns once the scanner confirmed (reciprocated with the right secret). */
export function shownVerifies(shown: QrCodeData, otherUser: string, otherDevice: string): VerifiedKeys {
  switch (shown.mode) {
    case 0:
      return { devices: [], masterKeys: [{ userId: otherUser, key: shown.key2 }] };
    case 1:
      return { devices: [{ userId: otherUser, deviceId: otherDevice, ed25519: shown.key2 }], masterKeys: [] };
    case 2:
      return { devices: [], masterKeys: [{ userId: otherUser, key: shown.key2 }] };
  }
}

function same(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  try {
    return constantTimeEqual(decodeBase64(a), decodeBase64(b));
  } catch {
    return false;
  }
}

/** Checks a code we scanned against the keys we hold; on success, what it proves. */
export function checkScanned(
  env: VerificationEnv,
  code: QrCodeData,
  flowId: string,
  otherUser: string,
  otherDevice: string,
): QrCheck {
  if (code.flowId !== flowId)
    return { ok: false, code: "m.unknown_transaction", reason: "the code is for another flow" };
  const own = otherUser === env.userId;
  const expected: readonly QrMode[] = own ? [1, 2] : [0];
  if (!expected.includes(code.mode)) {
    return { ok: false, code: "m.user_mismatch", reason: "the code's mode does not fit who is verified" };
  }
  const mismatch: QrCheck = {
    ok: false,
    code: "m.key_mismatch",
    reason: "the code's keys do not match ours",
  };
  const ourMaster = env.masterKey(env.userId);
  switch (code.mode) {
    case 0: {
      // Their master key, and what they think ours is.
      const theirMaster = env.masterKey(otherUser);
      if (!same(theirMaster, code.key1) || !same(ourMaster, code.key2)) return mismatch;
      return { ok: true, verified: { devices: [], masterKeys: [{ userId: otherUser, key: code.key1 }] } };
    }
    case 1: {
      // The master key they trust, and what they think our device key is.
      if (!same(ourMaster, code.key1) || !same(env.ed25519, code.key2)) return mismatch;
      return { ok: true, verified: { devices: [], masterKeys: [{ userId: otherUser, key: code.key1 }] } };
    }
    case 2: {
      // Their device key, and what they think the master key is (we must trust it for this to mean anything).
      const theirKey = env.deviceKey(otherUser, otherDevice);
      if (!env.ownMasterTrusted || !same(theirKey, code.key1) || !same(ourMaster, code.key2)) return mismatch;
      return {
        ok: true,
        verified: {
          devices: [{ userId: otherUser, deviceId: otherDevice, ed25519: code.key1 }],
          masterKeys: [],
        },
      };
    }
  }
}

/** Whether a reciprocate's secret is the one we showed (constant time). */
export function secretMatches(shown: QrCodeData, secret: string | undefined): boolean {
  return secret !== undefined && same(secret, shown.secret);
}
