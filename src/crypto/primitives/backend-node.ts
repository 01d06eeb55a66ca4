/**
 * The Node back end: node:crypto (OpenSSL) for the symmetric primitives (symmetric-node.ts, a module
 * of its own like the portable back end's; ChaCha20-Poly1305 is aead-node.ts); libsodium through
 * sodium-native for X25519 and Ed25519, because it works on raw 32-byte keys (node:crypto needs a DER/JWK import
 * per peer key, which costs more than the curve operation itself).
 */
import sodium from "sodium-native";
import type { CryptoBackend } from "./backend.ts";
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, X25519_KEY_LENGTH } from "./limits.ts";
import { symmetricBackend } from "./symmetric-node.ts";
import {
  checkEd25519SecretKey,
  checkEd25519Seed,
  checkEd25519SignInto,
  checkX25519Public,
  checkX25519Secret,
  isAllZero,
  nonContributory,
} from "./validate.ts";

// libsodium is handed only these three buffers, allocated once off V8's heap, never the caller's
// arrays: a new Uint8Array of 64 bytes or less lives on V8's heap, and the first time native code
// asks for its address V8 moves it off (a new backing store, a copy, an extension the GC tracks
// from then on). Every key and shared secret in an Olm session set-up is such an array, so that
// was one or two moves per curve operation: 1.4 µs of a 41 µs X25519, 0.6 µs of a 16 µs base-point
// multiplication (CPU time, measured in one process with alternating batches). Copying 32 bytes
// in and out costs about 0.05 µs. Single-threaded and synchronous, so sharing them is safe; the
// secret scalar and the result are wiped after each call.
const scalarScratch = new Uint8Array(new ArrayBuffer(X25519_KEY_LENGTH));
const pointScratch = new Uint8Array(new ArrayBuffer(X25519_KEY_LENGTH));
const resultScratch = new Uint8Array(new ArrayBuffer(X25519_KEY_LENGTH));

/** The result scratch as a fresh array of the caller's (on V8's heap), then wiped. */
function takeResult(): Uint8Array {
  const out = resultScratch.slice();
  resultScratch.fill(0);
  return out;
}

function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  scalarScratch.set(secretKey);
  try {
    sodium.crypto_scalarmult_base(resultScratch, scalarScratch);
  } finally {
    scalarScratch.fill(0);
  }
  return takeResult();
}

function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  checkX25519Public(publicKey);
  scalarScratch.set(secretKey);
  pointScratch.set(publicKey);
  let failed = false;
  try {
    sodium.crypto_scalarmult(resultScratch, scalarScratch, pointScratch);
  } catch {
    // libsodium's only failure with valid lengths: the result is all zero (low-order point).
    failed = true;
  } finally {
    scalarScratch.fill(0);
  }
  if (failed || isAllZero(resultScratch)) {
    resultScratch.fill(0);
    throw nonContributory();
  }
  return takeResult();
}

function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  checkEd25519Seed(seed);
  const pk = new Uint8Array(ED25519_PUBLIC_KEY_LENGTH);
  const sk = new Uint8Array(64);
  sodium.crypto_sign_seed_keypair(pk, sk, seed);
  sodium.sodium_memzero(sk);
  return pk;
}

function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  checkEd25519SecretKey(secretKey, message);
  const sig = new Uint8Array(ED25519_SIGNATURE_LENGTH);
  sodium.crypto_sign_detached(sig, message, secretKey);
  return sig;
}

// Straight into the caller's buffer: Megolm signs each message into the message's own buffer
// (allocated off V8's heap), where a new 64-byte array would live on the heap and be moved off it
// when libsodium asks for its address, then be copied into the message.
function ed25519SignInto(out: Uint8Array, secretKey: Uint8Array, message: Uint8Array): void {
  checkEd25519SignInto(out, secretKey, message);
  sodium.crypto_sign_detached(out, message, secretKey);
}

/**
 * libsodium's verification is strict (RFC 8032 plus: canonical S, canonical non-small-order A,
 * non-small-order R, cofactorless equation), the same family of checks as vodozemac's
 * `verify_strict`. The noble back end reproduces exactly these rules.
 */
function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (
    !(publicKey instanceof Uint8Array) ||
    !(message instanceof Uint8Array) ||
    !(signature instanceof Uint8Array) ||
    publicKey.length !== ED25519_PUBLIC_KEY_LENGTH ||
    signature.length !== ED25519_SIGNATURE_LENGTH
  ) {
    return false;
  }
  try {
    return sodium.crypto_sign_verify_detached(signature, message, publicKey) === true;
  } catch {
    return false;
  }
}

// libsodium is native already: the asynchronous verify is the synchronous one.
async function ed25519VerifyAsync(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  return ed25519Verify(publicKey, message, signature);
}

export const backend: CryptoBackend = {
  ...symmetricBackend,
  x25519PublicKey,
  x25519,
  ed25519PublicKey,
  ed25519Sign,
  ed25519SignInto,
  ed25519Verify,
  ed25519VerifyAsync,
};
