/**
 * Signing and checking the JSON objects the key endpoints carry, with our account's key
 * (spec appendices, "Signing JSON"; the canonical form lives in `crypto/json`).
 */
import { type Signatures, signJson, verifySignedJson } from "../crypto/json/index.ts";
import type { Account } from "../crypto/olm/index.ts";

/** `obj` with our device's signature added under `signatures[userId]["ed25519:deviceId"]`. */
export function signWithAccount<T extends Record<string, unknown>>(
  account: Account,
  userId: string,
  deviceId: string,
  obj: T,
): T & { signatures: Signatures } {
  return signJson(obj, userId, `ed25519:${deviceId}`, (bytes) => account.sign(bytes));
}

/**
 * Whether `obj` carries a valid signature by `ed25519Key` under `signatures[userId][keyId]`.
 * Never throws: anything malformed is simply not validly signed.
 */
export function hasValidSignature(obj: unknown, userId: string, keyId: string, ed25519Key: string): boolean {
  return verifySignedJson(obj, userId, keyId, ed25519Key);
}
