/**
 * Signed JSON (spec appendices, "Signing JSON"): the signature covers the canonical JSON of the
 * object without its `signatures` and `unsigned` fields.
 */
import { canonicalJson } from "../crypto/json/canonical.ts";
import type { Account } from "../crypto/olm/index.ts";
import { decodeBase64, ed25519Verify, utf8Encode } from "../crypto/primitives/index.ts";
import type { Signatures } from "./requests.ts";

function signable(obj: Record<string, unknown>): Record<string, unknown> {
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  return rest;
}

/** `obj` with our device's signature added under `signatures[userId]["ed25519:deviceId"]`. */
export function signWithAccount<T extends Record<string, unknown>>(
  account: Account,
  userId: string,
  deviceId: string,
  obj: T,
): T & { signatures: Signatures } {
  const signature = account.sign(canonicalJson(signable(obj)));
  const existing = (obj.signatures ?? {}) as Signatures;
  return {
    ...obj,
    signatures: { ...existing, [userId]: { ...existing[userId], [`ed25519:${deviceId}`]: signature } },
  };
}

/**
 * Whether `obj` carries a valid signature by `ed25519Key` under `signatures[userId][keyId]`.
 * Never throws: anything malformed is simply not validly signed.
 */
export function hasValidSignature(obj: unknown, userId: string, keyId: string, ed25519Key: string): boolean {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return false;
  const record = obj as Record<string, unknown>;
  const sigs = record.signatures;
  if (typeof sigs !== "object" || sigs === null) return false;
  const byUser = (sigs as Record<string, unknown>)[userId];
  if (typeof byUser !== "object" || byUser === null) return false;
  const signature = (byUser as Record<string, unknown>)[keyId];
  if (typeof signature !== "string") return false;
  try {
    const sigBytes = decodeBase64(signature);
    const keyBytes = decodeBase64(ed25519Key);
    if (sigBytes.length !== 64 || keyBytes.length !== 32) return false;
    return ed25519Verify(keyBytes, utf8Encode(canonicalJson(signable(record))), sigBytes);
  } catch {
    return false;
  }
}
