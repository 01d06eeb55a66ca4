/**
 * The portable back end's symmetric half (`#primitives-symmetric`): hashes, MACs, KDFs and AES from
 * the audited pure-JavaScript @noble/* libraries, Web Crypto where the browser is faster, and
 * WebCrypto's `getRandomValues`. What the stores and attachments need, without the curves, so that
 * a browser bundle's first chunks do not carry them (backend-noble.ts adds the rest).
 */
import { cbc, ctr } from "@noble/ciphers/aes.js";
import { hmac } from "@noble/hashes/hmac.js";
import { pbkdf2, pbkdf2Async } from "@noble/hashes/pbkdf2.js";
import { sha256 as nobleSha256, sha512 } from "@noble/hashes/sha2.js";
import type { Sha256Hasher, SymmetricBackend } from "./backend.ts";
import { assertBytes, assertLength, CryptoPrimitiveError } from "./errors.ts";
import { hmacOverSha256 } from "./hmac-over-sha256.ts";
import {
  checkAes,
  checkCbcCiphertext,
  checkHkdf,
  checkPbkdf2,
  checkPbkdf2Steps,
  checkRandomLength,
} from "./validate.ts";
import { subtleCrypto, webAes256CbcDecrypt, webHkdfSha256, webHmacSha256 } from "./web-crypto.ts";

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

// HMAC and HKDF composed over noble's SHA-256 as the Node back end composes them over its own
// (hmac-over-sha256.ts), with one noble hasher reset from a pristine copy for every hash and wiped
// after it. At Megolm's sizes (a ratchet step, a message MAC: four to six SHA-256 blocks) noble's
// own `hmac` spent about as much on its per-call objects (two hashers and a padded key each) as on
// hashing (in Chromium a 1-byte HMAC took 10.6 µs of CPU with it, 6.5 µs composed here).
const PRISTINE_SHA256 = nobleSha256.create();
const WORK_SHA256 = nobleSha256.create();
const overSha256 = hmacOverSha256((out, input) => {
  PRISTINE_SHA256._cloneInto(WORK_SHA256);
  WORK_SHA256.update(input).digestInto(out);
  WORK_SHA256.destroy(); // wipes the state and the buffered block
});

function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  assertBytes(key, "HMAC key");
  assertBytes(data, "HMAC input");
  return overSha256.hmacSha256(key, data);
}

function hmacSha256Into(out: Uint8Array, key: Uint8Array, data: Uint8Array): void {
  assertLength(out, 32, "HMAC output");
  assertBytes(key, "HMAC key");
  assertBytes(data, "HMAC input");
  overSha256.hmacSha256Into(out, key, data);
}

function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  checkHkdf(ikm, salt, info, length);
  if (length === 0) return new Uint8Array(0);
  // An empty salt and an absent one are the same HMAC key (zero-padded to the block size).
  return overSha256.hkdfSha256(ikm, salt, info, length);
}

function hkdfSha256Into(out: Uint8Array, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): void {
  assertBytes(out, "HKDF output");
  checkHkdf(ikm, salt, info, out.length);
  if (out.length > 0) overSha256.hkdfSha256Into(out, ikm, salt, info);
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

/**
 * The per-message primitives through Web Crypto where the runtime has it (HKDF, HMAC and AES-CBC
 * of Megolm's sizes are faster there than in JavaScript), with the synchronous forms' results and
 * refusals; the synchronous forms elsewhere. (Ed25519 verify likewise, in backend-noble.ts.)
 */
/** Web Crypto, looked up once: the getters cost a measurable share of a Megolm decryption. */
const SUBTLE = subtleCrypto();

async function hkdfSha256Async(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const subtle = SUBTLE;
  checkHkdf(ikm, salt, info, length);
  if (subtle === undefined || ikm.length === 0 || length === 0) return hkdfSha256(ikm, salt, info, length);
  return webHkdfSha256(subtle, ikm, salt, info, length);
}

async function hmacSha256Async(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const subtle = SUBTLE;
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
  const subtle = SUBTLE;
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

export const symmetricBackend: SymmetricBackend = {
  name: "noble",
  randomBytes,
  sha256,
  createSha256,
  hmacSha256,
  hmacSha256Into,
  hkdfSha256,
  hkdfSha256Into,
  pbkdf2Sha512,
  pbkdf2Sha512Async,
  createHmacSha512,
  aes256CbcEncrypt,
  aes256CbcDecrypt,
  aes256Ctr,
  hkdfSha256Async,
  hmacSha256Async,
  aes256CbcDecryptAsync,
};
