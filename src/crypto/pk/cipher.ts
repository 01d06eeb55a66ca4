/**
 * The `m.megolm_backup.v1.curve25519-aes-sha2` cipher, as libolm's PkEncryption implements it:
 * X25519 between an ephemeral key and the backup key; HKDF-SHA-256 with empty salt and empty info
 * to 80 bytes (AES-256 key, HMAC key, IV); AES-256-CBC with PKCS#7.
 *
 * The MAC is HMAC-SHA-256 over the EMPTY string, truncated to 8 bytes. libolm's shared cipher
 * code MACs "the output buffer minus the MAC"; PK encryption hands it only the 8-byte MAC buffer,
 * so the input length is zero. Every implementation (vodozemac, matrix-rust-sdk, the spec's
 * later note) keeps this for compatibility. The MAC therefore only proves knowledge of the
 * shared secret, not the integrity of the ciphertext; CBC padding errors are still reported.
 */
import {
  CryptoPrimitiveError,
  decodeBase64,
  hkdfSha256,
  hmacSha256,
  X25519_KEY_LENGTH,
  x25519,
} from "../primitives/index.ts";
import { PkError } from "./errors.ts";

export const PK_MAC_LENGTH = 8;
const EMPTY = new Uint8Array(0);

export interface PkKeys {
  readonly aesKey: Uint8Array;
  readonly iv: Uint8Array;
  /** The 8-byte MAC this message must carry. */
  readonly mac: Uint8Array;
  /** The backing 80 bytes, wiped by the caller when done. */
  readonly all: Uint8Array;
}

export function agree(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return x25519(secretKey, publicKey);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) {
      throw new PkError(
        e.code === "NON_CONTRIBUTORY_KEY" ? "NON_CONTRIBUTORY_KEY" : "BAD_KEY",
        "Curve25519 key agreement refused the key",
      );
    }
    throw e;
  }
}

/** Derives the keys from the shared secret, and wipes the secret. */
export function deriveKeys(sharedSecret: Uint8Array): PkKeys {
  const all = hkdfSha256(sharedSecret, EMPTY, EMPTY, 80);
  sharedSecret.fill(0);
  const mac = hmacSha256(all.subarray(32, 64), EMPTY).subarray(0, PK_MAC_LENGTH);
  return { aesKey: all.subarray(0, 32), iv: all.subarray(64, 80), mac, all };
}

/** A Curve25519 public key given as unpadded base64 by a caller or peer. */
export function decodePublicKey(key: unknown, what: string): Uint8Array {
  if (typeof key !== "string") throw new PkError("BAD_KEY", `${what} must be a string`);
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(key);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw new PkError("BAD_KEY", `${what} is not valid base64`);
    throw e;
  }
  if (bytes.length !== X25519_KEY_LENGTH) throw new PkError("BAD_KEY", `${what} is not 32 bytes`);
  return bytes;
}
