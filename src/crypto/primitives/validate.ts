/**
 * Argument checks shared by every back end, so that all of them refuse the same inputs with the
 * same `CryptoPrimitiveError` codes before any native or library code sees the bytes.
 */
import { assertBytes, assertInteger, assertLength, CryptoPrimitiveError } from "./errors.ts";
import {
  AES_BLOCK_LENGTH,
  AES256_KEY_LENGTH,
  CHACHA20_POLY1305_KEY_LENGTH,
  CHACHA20_POLY1305_NONCE_LENGTH,
  CHACHA20_POLY1305_TAG_LENGTH,
  ED25519_SECRET_KEY_LENGTH,
  ED25519_SEED_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  HKDF_SHA256_MAX_LENGTH,
  MAX_RANDOM_BYTES,
  PBKDF2_MAX_ITERATIONS,
  PBKDF2_MAX_LENGTH,
  X25519_KEY_LENGTH,
} from "./limits.ts";

export function checkRandomLength(length: number): void {
  assertInteger(length, 0, MAX_RANDOM_BYTES, "random length");
}

export function checkHkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): void {
  assertBytes(ikm, "HKDF input key material");
  assertBytes(salt, "HKDF salt");
  assertBytes(info, "HKDF info");
  assertInteger(length, 0, HKDF_SHA256_MAX_LENGTH, "HKDF output length");
}

export function checkPbkdf2(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): void {
  assertBytes(password, "PBKDF2 password");
  assertBytes(salt, "PBKDF2 salt");
  assertInteger(iterations, 1, PBKDF2_MAX_ITERATIONS, "PBKDF2 iterations");
  assertInteger(length, 1, PBKDF2_MAX_LENGTH, "PBKDF2 output length");
}

export function checkPbkdf2Steps(key: Uint8Array): void {
  assertBytes(key, "HMAC-SHA-512 key");
}

export function checkAes(key: Uint8Array, iv: Uint8Array, data: Uint8Array): void {
  assertLength(key, AES256_KEY_LENGTH, "AES-256 key");
  assertLength(iv, AES_BLOCK_LENGTH, "AES IV");
  assertBytes(data, "AES input");
}

export function checkCbcCiphertext(ciphertext: Uint8Array): void {
  if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK_LENGTH !== 0) {
    throw new CryptoPrimitiveError(
      "BAD_LENGTH",
      `AES-CBC ciphertext must be a non-zero multiple of ${AES_BLOCK_LENGTH} bytes, got ${ciphertext.length}`,
    );
  }
}

export function checkX25519Secret(secretKey: Uint8Array): void {
  assertLength(secretKey, X25519_KEY_LENGTH, "X25519 secret key");
}

export function checkX25519Public(publicKey: Uint8Array): void {
  assertLength(publicKey, X25519_KEY_LENGTH, "X25519 public key");
}

export function checkEd25519Seed(seed: Uint8Array): void {
  assertLength(seed, ED25519_SEED_LENGTH, "Ed25519 seed");
}

export function checkEd25519SecretKey(secretKey: Uint8Array, message: Uint8Array): void {
  assertLength(secretKey, ED25519_SECRET_KEY_LENGTH, "Ed25519 secret key");
  assertBytes(message, "message");
}

/** `ed25519SignInto`'s arguments: a 64-byte output that does not overlap the message. */
export function checkEd25519SignInto(out: Uint8Array, secretKey: Uint8Array, message: Uint8Array): void {
  checkEd25519SecretKey(secretKey, message);
  assertLength(out, ED25519_SIGNATURE_LENGTH, "Ed25519 signature output");
  if (
    out.buffer === message.buffer &&
    out.byteOffset < message.byteOffset + message.byteLength &&
    message.byteOffset < out.byteOffset + out.byteLength
  ) {
    throw new CryptoPrimitiveError("BAD_ARGUMENT", "the signature output must not overlap the message");
  }
}

/** Constant-time test for the all-zero X25519 output (a low-order peer key). */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

export function nonContributory(): CryptoPrimitiveError {
  return new CryptoPrimitiveError(
    "NON_CONTRIBUTORY_KEY",
    "X25519 shared secret is all zero: the public key is a low-order point",
  );
}

export function checkChaCha20Poly1305(
  key: Uint8Array,
  nonce: Uint8Array,
  data: Uint8Array,
  sealed: boolean,
  aad: Uint8Array | undefined,
): void {
  assertLength(key, CHACHA20_POLY1305_KEY_LENGTH, "ChaCha20-Poly1305 key");
  if (aad !== undefined) assertBytes(aad, "ChaCha20-Poly1305 associated data");
  assertLength(nonce, CHACHA20_POLY1305_NONCE_LENGTH, "ChaCha20-Poly1305 nonce");
  assertBytes(data, "ChaCha20-Poly1305 input");
  if (sealed && data.length < CHACHA20_POLY1305_TAG_LENGTH) {
    throw new CryptoPrimitiveError("BAD_LENGTH", "ChaCha20-Poly1305 input is shorter than its tag");
  }
}
