/**
 * The portable back end: audited pure-JavaScript @noble/* libraries plus WebCrypto's
 * `getRandomValues`. Runs anywhere (browsers, Deno, Bun, workers, React Native with a
 * getRandomValues polyfill). Same inputs, same outputs, same refusals as the Node back end; the
 * shared test suite holds both to the same vectors.
 */
import { cbc, ctr } from "@noble/ciphers/aes.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ed25519, x25519 as noble25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE } from "@noble/curves/utils.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { pbkdf2, pbkdf2Async } from "@noble/hashes/pbkdf2.js";
import { sha256 as nobleSha256, sha512 } from "@noble/hashes/sha2.js";
import type { CryptoBackend, Sha256Hasher } from "./backend.ts";
import { assertBytes, CryptoPrimitiveError } from "./errors.ts";
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH, ED25519_SIGNATURE_LENGTH } from "./limits.ts";
import {
  checkAes,
  checkCbcCiphertext,
  checkChaCha20Poly1305,
  checkEd25519SecretKey,
  checkEd25519Seed,
  checkHkdf,
  checkPbkdf2,
  checkPbkdf2Steps,
  checkRandomLength,
  checkX25519Public,
  checkX25519Secret,
  isAllZero,
  nonContributory,
} from "./validate.ts";
import { subtleCrypto, webAes256CbcDecrypt, webHkdfSha256, webHmacSha256 } from "./web-crypto.ts";
import { createWebEd25519Verify } from "./web-ed25519.ts";

/** WebCrypto refuses more than 65 536 bytes per getRandomValues call. */
const RANDOM_CHUNK = 65_536;

function randomBytes(length: number): Uint8Array {
  checkRandomLength(length);
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += RANDOM_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + RANDOM_CHUNK)));
  }
  return out;
}

function createSha256(): Sha256Hasher {
  const hash = nobleSha256.create();
  return {
    update(data) {
      assertBytes(data, "SHA-256 input");
      hash.update(data);
    },
    digest: () => hash.digest(),
  };
}

function sha256(data: Uint8Array): Uint8Array {
  assertBytes(data, "SHA-256 input");
  return nobleSha256(data);
}

function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  assertBytes(key, "HMAC key");
  assertBytes(data, "HMAC input");
  return hmac(nobleSha256, key, data);
}

function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  checkHkdf(ikm, salt, info, length);
  if (length === 0) return new Uint8Array(0);
  // An empty salt and an absent one are the same HMAC key (zero-padded to the block size).
  return hkdf(nobleSha256, ikm, salt, info, length);
}

function hkdfSha256Into(out: Uint8Array, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): void {
  assertBytes(out, "HKDF output");
  const okm = hkdfSha256(ikm, salt, info, out.length);
  out.set(okm);
  okm.fill(0);
}

function pbkdf2Sha512(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  checkPbkdf2(password, salt, iterations, length);
  return pbkdf2(sha512, password, salt, { c: iterations, dkLen: length });
}

/**
 * Web Crypto where the runtime has it (in Chromium about 7x faster than JavaScript, and off the
 * main thread); else noble's asynchronous PBKDF2, which yields to the event loop as it goes.
 */
async function pbkdf2Sha512Async(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Promise<Uint8Array> {
  checkPbkdf2(password, salt, iterations, length);
  const subtle = globalThis.crypto?.subtle;
  if (subtle !== undefined && length > 0) {
    try {
      const key = await subtle.importKey("raw", ownBuffer(password), "PBKDF2", false, ["deriveBits"]);
      const params = { name: "PBKDF2", hash: "SHA-512", salt: ownBuffer(salt), iterations };
      return new Uint8Array(await subtle.deriveBits(params, key, length * 8));
    } catch {
      // Some engines refuse parameters PBKDF2 allows (an empty password); compute it here instead.
    }
  }
  return pbkdf2Async(sha512, password, salt, { c: iterations, dkLen: length });
}

/** A copy on its own ArrayBuffer, the type Web Crypto takes. */
function ownBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

function aes256CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  checkAes(key, iv, plaintext);
  return cbc(key, iv).encrypt(plaintext);
}

function aes256CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  checkAes(key, iv, ciphertext);
  checkCbcCiphertext(ciphertext);
  try {
    return cbc(key, iv).decrypt(ciphertext);
  } catch {
    // Key, IV and length are checked above, so the only remaining failure is the PKCS#7 pad.
    throw new CryptoPrimitiveError("BAD_PADDING", "AES-CBC padding is invalid");
  }
}

function aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkAes(key, iv, data);
  if (data.length === 0) return new Uint8Array(0);
  return ctr(key, iv).encrypt(data);
}

function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  return noble25519.getPublicKey(secretKey);
}

function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  checkX25519Secret(secretKey);
  checkX25519Public(publicKey);
  let out: Uint8Array;
  try {
    out = noble25519.getSharedSecret(secretKey, publicKey);
  } catch {
    // noble refuses low-order u-coordinates before running the ladder; lengths are checked above.
    throw nonContributory();
  }
  if (isAllZero(out)) throw nonContributory();
  return out;
}

function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  checkEd25519Seed(seed);
  return ed25519.getPublicKey(seed);
}

function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  checkEd25519SecretKey(secretKey, message);
  // noble derives the public key from the seed itself; the stored half is not needed here.
  return ed25519.sign(message, secretKey.subarray(0, ED25519_SEED_LENGTH));
}

const Point = ed25519.Point;
const L = Point.Fn.ORDER;

/**
 * Strict verification with exactly libsodium's rules (what the Node back end runs), close to
 * ed25519-dalek's `verify_strict` that vodozemac uses:
 *   S < L; A canonical and not of small order; R not of small order; and the cofactorless
 *   equation R == [S]B - [k]A compared on the encoding.
 * noble's own `verify` checks the cofactored equation, which accepts a few crafted signatures
 * that libsodium rejects; back ends must agree on every signature, so the equation is spelled
 * out here with noble's point arithmetic.
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
    const rBytes = signature.subarray(0, 32);
    const s = bytesToNumberLE(signature.subarray(32, 64));
    if (s >= L) return false;
    const a = Point.fromBytes(publicKey, false);
    if (a.isSmallOrder()) return false;
    // A non-canonical R can never equal the canonical encoding computed below, so strict
    // decoding loses nothing; a small-order R is refused as libsodium does.
    const r = Point.fromBytes(rBytes, false);
    if (r.isSmallOrder()) return false;
    const k = Point.Fn.create(bytesToNumberLE(sha512(concat3(rBytes, publicKey, message))));
    const expected = Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k)).toBytes();
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= expected[i]! ^ rBytes[i]!;
    return diff === 0;
  } catch {
    // Undecodable points: the signature is invalid, never an exception.
    return false;
  }
}

/**
 * The per-message primitives through Web Crypto where the runtime has it (in Chromium: Ed25519
 * verify about ten times faster than noble, see web-ed25519.ts for how its verdicts are kept
 * equal; HKDF, HMAC and AES-CBC of Megolm's sizes faster too), with the synchronous forms' results
 * and refusals; the synchronous forms elsewhere.
 */
const ed25519VerifyAsync = createWebEd25519Verify(subtleCrypto(), ed25519Verify);

async function hkdfSha256Async(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const subtle = subtleCrypto();
  checkHkdf(ikm, salt, info, length);
  if (subtle === undefined || ikm.length === 0 || length === 0) return hkdfSha256(ikm, salt, info, length);
  return webHkdfSha256(subtle, ikm, salt, info, length);
}

async function hmacSha256Async(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const subtle = subtleCrypto();
  // Web Crypto refuses an empty HMAC key; non-bytes go to hmacSha256, which refuses them.
  if (
    subtle === undefined ||
    !(key instanceof Uint8Array) ||
    key.length === 0 ||
    !(data instanceof Uint8Array)
  ) {
    return hmacSha256(key, data);
  }
  return webHmacSha256(subtle, key, data);
}

async function aes256CbcDecryptAsync(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Uint8Array> {
  const subtle = subtleCrypto();
  if (subtle === undefined) return aes256CbcDecrypt(key, iv, ciphertext);
  checkAes(key, iv, ciphertext);
  checkCbcCiphertext(ciphertext);
  try {
    return await webAes256CbcDecrypt(subtle, key, iv, ciphertext);
  } catch {
    // Key, IV and length are checked above, so the only remaining failure is the PKCS#7 pad.
    throw new CryptoPrimitiveError("BAD_PADDING", "AES-CBC padding is invalid");
  }
}

function createHmacSha512(key: Uint8Array): (data: Uint8Array) => Uint8Array {
  checkPbkdf2Steps(key);
  const keyed = hmac.create(sha512, key);
  return (data) => {
    assertBytes(data, "HMAC input");
    return keyed.clone().update(data).digest();
  };
}

function chacha20Poly1305Encrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkChaCha20Poly1305(key, nonce, plaintext, false, aad);
  return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

function chacha20Poly1305Decrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkChaCha20Poly1305(key, nonce, sealed, true, aad);
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(sealed);
  } catch {
    throw new CryptoPrimitiveError("BAD_TAG", "ChaCha20-Poly1305 tag does not match");
  }
}

function concat3(a: Uint8Array, b: Uint8Array, c: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + c.length);
  out.set(a, 0);
  out.set(b, a.length);
  out.set(c, a.length + b.length);
  return out;
}

export const backend: CryptoBackend = {
  name: "noble",
  randomBytes,
  sha256,
  createSha256,
  hmacSha256,
  hkdfSha256,
  hkdfSha256Into,
  pbkdf2Sha512,
  pbkdf2Sha512Async,
  createHmacSha512,
  chacha20Poly1305Encrypt,
  chacha20Poly1305Decrypt,
  aes256CbcEncrypt,
  aes256CbcDecrypt,
  aes256Ctr,
  x25519PublicKey,
  x25519,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  ed25519VerifyAsync,
  hkdfSha256Async,
  hmacSha256Async,
  aes256CbcDecryptAsync,
};
