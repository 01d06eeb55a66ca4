/**
 * Per-message keys (megolm.md "Encryption"): HKDF-SHA-256 over the whole 128-byte ratchet with
 * an empty salt and info "MEGOLM_KEYS", 80 bytes split into the AES-256 key, the HMAC-SHA-256 key
 * and the AES-CBC IV. One HKDF call yields all three.
 */
import { hkdfSha256Async, hkdfSha256Into, utf8Encode } from "../primitives/index.ts";

const KDF_INFO = utf8Encode("MEGOLM_KEYS");
const EMPTY = new Uint8Array(0);

export const DERIVED_KEYS_LENGTH = 80;

export interface MessageKeys {
  readonly aesKey: Uint8Array;
  readonly macKey: Uint8Array;
  readonly iv: Uint8Array;
  /** The backing 80 bytes, wiped by the caller when done. */
  readonly all: Uint8Array;
}

// One buffer and its views, reused for every message: encryption and decryption are synchronous
// and wipe it before returning, and a fresh 80-byte key set per message was measurable garbage.
const ALL = new Uint8Array(DERIVED_KEYS_LENGTH);
const KEYS: MessageKeys = {
  aesKey: ALL.subarray(0, 32),
  macKey: ALL.subarray(32, 64),
  iv: ALL.subarray(64, 80),
  all: ALL,
};

/** The message keys for a ratchet state, valid until the next call (wipe `all` when done). */
export function deriveMessageKeys(ratchetBytes: Uint8Array): MessageKeys {
  hkdfSha256Into(ALL, ratchetBytes, EMPTY, KDF_INFO);
  return KEYS;
}

/** The same keys through the asynchronous HKDF (Web Crypto in browsers), in a buffer of their own. */
export async function deriveMessageKeysAsync(ratchetBytes: Uint8Array): Promise<MessageKeys> {
  const all = await hkdfSha256Async(ratchetBytes, EMPTY, KDF_INFO, DERIVED_KEYS_LENGTH);
  return { aesKey: all.subarray(0, 32), macKey: all.subarray(32, 64), iv: all.subarray(64, 80), all };
}
