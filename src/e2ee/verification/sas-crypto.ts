/**
 * The SAS computations of `m.sas.v1` over the SAS primitive: the accept's commitment, the HKDF
 * info for the short string, and the MACs of the keys being verified (client-server API, "SAS HKDF
 * calculation" and "MAC calculation"). Pure functions, checked by known-answer tests.
 */
import { canonicalJson, compareCodePoints } from "../../crypto/json/index.ts";
import { encodeBase64, sha256, utf8Encode } from "../../crypto/primitives/index.ts";
import { SAS_BYTES_LENGTH, type Sas, type SasMacMethod } from "../../crypto/sas/index.ts";
import { MAC_LEGACY } from "./constants.ts";

/** The accepter's commitment: unpadded base64 of SHA-256(its public key ‖ canonical JSON of the start). */
export function sasCommitment(publicKey: string, startContent: Record<string, unknown>): string {
  return encodeBase64(sha256(utf8Encode(publicKey + canonicalJson(startContent))));
}

export interface SasParties {
  readonly startUser: string;
  readonly startDevice: string;
  readonly startKey: string;
  readonly acceptUser: string;
  readonly acceptDevice: string;
  readonly acceptKey: string;
  readonly flowId: string;
}

/** The HKDF info of `curve25519-hkdf-sha256`. */
export function sasInfo(p: SasParties): string {
  return `MATRIX_KEY_VERIFICATION_SAS|${p.startUser}|${p.startDevice}|${p.startKey}|${p.acceptUser}|${p.acceptDevice}|${p.acceptKey}|${p.flowId}`;
}

/** The bytes both sides turn into emoji and decimals. */
export function sasBytes(sas: Sas, p: SasParties): Uint8Array {
  return sas.generateBytes(sasInfo(p), SAS_BYTES_LENGTH);
}

/** Who MACs for whom: the sender's user and device, then the receiver's. */
export interface MacParties {
  readonly senderUser: string;
  readonly senderDevice: string;
  readonly receiverUser: string;
  readonly receiverDevice: string;
  readonly flowId: string;
}

/** The HKDF info for the MAC of one key (`keyId`) or of the key list (`KEY_IDS`). */
export function macInfo(p: MacParties, keyId: string): string {
  return `MATRIX_KEY_VERIFICATION_MAC${p.senderUser}${p.senderDevice}${p.receiverUser}${p.receiverDevice}${p.flowId}${keyId}`;
}

/** The sorted, comma-joined key IDs: the input of the `keys` MAC. */
export function keyIdList(keyIds: Iterable<string>): string {
  return [...keyIds].sort(compareCodePoints).join(",");
}

export function sasMacMethod(method: string): SasMacMethod {
  return method === MAC_LEGACY ? "hkdf-hmac-sha256" : "hkdf-hmac-sha256.v2";
}

/** The `mac` and `keys` of our `m.key.verification.mac`, over the keys we ask them to verify. */
export function macContent(
  sas: Sas,
  method: string,
  p: MacParties,
  keys: Readonly<Record<string, string>>,
): { mac: Record<string, string>; keys: string } {
  const m = sasMacMethod(method);
  const mac: Record<string, string> = {};
  for (const [keyId, key] of Object.entries(keys))
    mac[keyId] = sas.calculateMacWith(m, key, macInfo(p, keyId));
  return { mac, keys: sas.calculateMacWith(m, keyIdList(Object.keys(keys)), macInfo(p, "KEY_IDS")) };
}

export type MacCheck =
  | { readonly ok: true; readonly verified: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks their MAC event against the keys we hold for them (`known`: key ID → key). The key list
 * MAC must match; every listed key we know must match; keys we do not know are skipped (the spec
 * lets a side verify keys the other does not track), but at least one must be verified.
 */
export function checkMac(
  sas: Sas,
  method: string,
  p: MacParties,
  content: { mac: Readonly<Record<string, string>>; keys: string },
  known: Readonly<Record<string, string>>,
): MacCheck {
  const m = sasMacMethod(method);
  const ids = Object.keys(content.mac);
  if (!sas.verifyMac(m, keyIdList(ids), macInfo(p, "KEY_IDS"), content.keys)) {
    return { ok: false, reason: "the MAC of the key list does not match" };
  }
  const verified: string[] = [];
  for (const keyId of ids) {
    // Own entries only: a key ID such as `toString` must not find Object.prototype's member.
    const key = Object.hasOwn(known, keyId) ? known[keyId] : undefined;
    if (key === undefined) continue;
    if (!sas.verifyMac(m, key, macInfo(p, keyId), content.mac[keyId] as string)) {
      return { ok: false, reason: `the MAC of ${keyId} does not match` };
    }
    verified.push(keyId);
  }
  if (verified.length === 0) return { ok: false, reason: "no key we know was MACed" };
  return { ok: true, verified };
}
