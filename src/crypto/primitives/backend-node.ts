/**
 * The Node back end: node:crypto (OpenSSL) for hashing, MACs, KDFs and AES; libsodium through
 * sodium-native for X25519 and Ed25519, because it works on raw 32-byte keys (node:crypto needs a
 * DER/JWK import per peer key, which costs more than the curve operation itself).
 *
 * Measured on the 2-core build machine (ops/s, Node 20, 200k iterations, inputs of 32 / 150 / 300
 * bytes), to choose between OpenSSL and libsodium for the per-message hashes:
 *   SHA-256   crypto.hash 833k / 887k / 766k, createHash 618k / 638k / 728k,
 *             sodium crypto_hash_sha256 1083k / 842k / 674k
 *   HMAC      createHmac 411k / 409k / 417k; libsodium has no HMAC-SHA-256 binding here
 *             (crypto_auth is HMAC-SHA-512-256), and HMAC built on its SHA-256 state API
 *             reached only 209k / 235k / 208k.
 *   HKDF (128-byte IKM, 80-byte output, as Megolm per message): hkdfSync 103k, HKDF over
 *             createHmac 106k: equal, so the one-call hkdfSync.
 * SHA-256 is a wash at these sizes; crypto.hash (one native call) wins on the 150-300 byte inputs
 * Olm and Megolm hash, so SHA-256 stays on OpenSSL with HMAC.
 */
import * as crypto from "node:crypto";
import sodium from "sodium-native";
import type { CryptoBackend, Sha256Hasher } from "./backend.ts";
import { assertBytes, CryptoPrimitiveError } from "./errors.ts";
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, X25519_KEY_LENGTH } from "./limits.ts";
import {
  checkAes,
  checkCbcCiphertext,
  checkEd25519SecretKey,
  checkEd25519Seed,
  checkHkdf,
  checkPbkdf2,
  checkRandomLength,
  checkX25519Public,
  checkX25519Secret,
  isAllZero,
  nonContributory,
} from "./validate.ts";

/**
 * A plain Uint8Array the caller owns. Node returns Buffers, which may be views into a shared
 * allocation pool; copy those so that `.buffer` never exposes other data and wiping is local.
 */
function own(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
}

const oneShotHash: ((data: Uint8Array) => Uint8Array) | undefined =
  typeof crypto.hash === "function" ? (data) => crypto.hash("sha256", data, "buffer") : undefined;

function sha256(data: Uint8Array): Uint8Array {
  assertBytes(data, "SHA-256 input");
  if (oneShotHash !== undefined) return own(oneShotHash(data));
  return own(crypto.createHash("sha256").update(data).digest());
}

function createSha256(): Sha256Hasher {
  const hash = crypto.createHash("sha256");
  return {
    update(data) {
      assertBytes(data, "SHA-256 input");
      hash.update(data);
    },
    digest: () => own(hash.digest()),
  };
}

function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  assertBytes(key, "HMAC key");
  assertBytes(data, "HMAC input");
  return own(crypto.createHmac("sha256", key).update(data).digest());
}

function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  checkHkdf(ikm, salt, info, length);
  if (length === 0) return new Uint8Array(0);
  return new Uint8Array(crypto.hkdfSync("sha256", ikm, salt, info, length));
}

function pbkdf2Sha512(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  checkPbkdf2(password, salt, iterations, length);
  return own(crypto.pbkdf2Sync(password, salt, iterations, length, "sha512"));
}

function cipher(
  algorithm: "aes-256-cbc" | "aes-256-ctr",
  key: Uint8Array,
  iv: Uint8Array,
  input: Uint8Array,
): Uint8Array {
  const c = crypto.createCipheriv(algorithm, key, iv);
  const head = c.update(input);
  const tail = c.final();
  if (tail.length === 0) return own(head);
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}

function aes256CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  checkAes(key, iv, plaintext);
  return cipher("aes-256-cbc", key, iv, plaintext);
}

function aes256CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  checkAes(key, iv, ciphertext);
  checkCbcCiphertext(ciphertext);
  const d = crypto.createDecipheriv("aes-256-cbc", key, iv);
  const head = d.update(ciphertext);
  let tail: Uint8Array;
  try {
    tail = d.final();
  } catch {
    // OpenSSL's only failure here, with the length already checked, is a bad PKCS#7 pad.
    throw new CryptoPrimitiveError("BAD_PADDING", "AES-CBC padding is invalid");
  }
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  head.fill(0);
  return out;
}

function aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkAes(key, iv, data);
  // OpenSSL's AES-CTR increments the whole 16-byte block as one big-endian counter, as required.
  return cipher("aes-256-ctr", key, iv, data);
}

function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  const out = new Uint8Array(X25519_KEY_LENGTH);
  sodium.crypto_scalarmult_base(out, secretKey);
  return out;
}

function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  checkX25519Public(publicKey);
  const out = new Uint8Array(X25519_KEY_LENGTH);
  try {
    sodium.crypto_scalarmult(out, secretKey, publicKey);
  } catch {
    // libsodium's only failure with valid lengths: the result is all zero (low-order point).
    throw nonContributory();
  }
  if (isAllZero(out)) throw nonContributory();
  return out;
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

function randomBytes(length: number): Uint8Array {
  checkRandomLength(length);
  return crypto.randomFillSync(new Uint8Array(length));
}

export const backend: CryptoBackend = {
  name: "node",
  randomBytes,
  sha256,
  createSha256,
  hmacSha256,
  hkdfSha256,
  pbkdf2Sha512,
  aes256CbcEncrypt,
  aes256CbcDecrypt,
  aes256Ctr,
  x25519PublicKey,
  x25519,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
};
