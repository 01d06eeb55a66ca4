/**
 * The spec's recovery key representation ("Key representation" under Secret Storage), shared by
 * secret storage keys and backup keys: 0x8B 0x01, the 32-byte key, then a parity byte (the XOR of
 * every byte before it), in Bitcoin base58, shown in groups of four characters.
 */
import { base58 } from "@scure/base";
import { wipe } from "../primitives/symmetric.ts";
import { RecoveryKeyError } from "./errors.ts";

export const RECOVERY_KEY_PREFIX: readonly [number, number] = [0x8b, 0x01];
/** The key inside a recovery key. */
export const RECOVERY_KEY_LENGTH = 32;
/** prefix (2) + key (32) + parity (1). */
const DECODED_LENGTH = 2 + RECOVERY_KEY_LENGTH + 1;
/** Characters per group when a recovery key is shown to a user. */
export const RECOVERY_KEY_GROUP_SIZE = 4;
/**
 * The longest input we try to decode, whitespace included. A real key is 48 characters plus 11
 * spaces; base58 decoding is quadratic in the length, so a pasted novel is refused before it.
 */
export const MAX_RECOVERY_KEY_INPUT_LENGTH = 512;

function parity(bytes: Uint8Array, end: number): number {
  let p = 0;
  for (let i = 0; i < end; i++) p ^= bytes[i] ?? 0;
  return p;
}

/** The recovery key for a 32-byte key, in groups of four: `EsTc LW2K PGiF …`. */
export function encodeRecoveryKey(key: Uint8Array): string {
  if (!(key instanceof Uint8Array) || key.length !== RECOVERY_KEY_LENGTH) {
    throw new RecoveryKeyError("BAD_ARGUMENT", `a recovery key holds exactly ${RECOVERY_KEY_LENGTH} bytes`);
  }
  const bytes = new Uint8Array(DECODED_LENGTH);
  bytes[0] = RECOVERY_KEY_PREFIX[0];
  bytes[1] = RECOVERY_KEY_PREFIX[1];
  bytes.set(key, 2);
  bytes[DECODED_LENGTH - 1] = parity(bytes, DECODED_LENGTH - 1);
  const text = base58.encode(bytes);
  wipe(bytes);
  const groups: string[] = [];
  for (let i = 0; i < text.length; i += RECOVERY_KEY_GROUP_SIZE) {
    groups.push(text.slice(i, i + RECOVERY_KEY_GROUP_SIZE));
  }
  return groups.join(" ");
}

/**
 * The 32-byte key in a recovery key. Whitespace anywhere is ignored (the spec says it is
 * insignificant in user input). Throws `RecoveryKeyError`: `BAD_BASE58`, `BAD_LENGTH`,
 * `BAD_PREFIX` or `BAD_PARITY`, checked in that order. A well-formed key can still be the wrong
 * one: that is for the key check of the secret storage key or backup to say.
 */
export function decodeRecoveryKey(input: string): Uint8Array {
  if (typeof input !== "string") throw new RecoveryKeyError("BAD_ARGUMENT", "a recovery key is a string");
  if (input.length > MAX_RECOVERY_KEY_INPUT_LENGTH) {
    throw new RecoveryKeyError("BAD_LENGTH", "too long to be a recovery key");
  }
  const compact = input.replace(/\s+/gu, "");
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(compact);
  } catch {
    throw new RecoveryKeyError("BAD_BASE58", "a recovery key uses only base58 characters");
  }
  try {
    if (bytes.length !== DECODED_LENGTH) {
      throw new RecoveryKeyError(
        "BAD_LENGTH",
        `a recovery key decodes to ${DECODED_LENGTH} bytes, this one to ${bytes.length}`,
      );
    }
    if (bytes[0] !== RECOVERY_KEY_PREFIX[0] || bytes[1] !== RECOVERY_KEY_PREFIX[1]) {
      throw new RecoveryKeyError("BAD_PREFIX", "not a Matrix recovery key (wrong prefix)");
    }
    if (parity(bytes, DECODED_LENGTH - 1) !== bytes[DECODED_LENGTH - 1]) {
      throw new RecoveryKeyError("BAD_PARITY", "the recovery key has a typo (parity check failed)");
    }
    return bytes.slice(2, 2 + RECOVERY_KEY_LENGTH);
  } finally {
    wipe(bytes);
  }
}
