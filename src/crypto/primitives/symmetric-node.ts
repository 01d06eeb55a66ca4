/**
 * The Node back end's symmetric half (`#primitives-symmetric`): node:crypto (OpenSSL) for SHA-256,
 * HMAC, HKDF, PBKDF2 and AES; libsodium for short random strings (see randomBytes). backend-node.ts
 * adds X25519 and Ed25519 (libsodium) and ChaCha20-Poly1305; the split mirrors the portable back
 * end's, which keeps the curves out of a browser bundle's first chunks.
 *
 * HMAC-SHA-256 and HKDF are composed (hmac-over-sha256.ts) over a one-shot SHA-256 writing into
 * preallocated buffers. Measured on the 2-core build machine (Node 20, OpenSSL 3.0):
 *   HMAC, 32-byte key, 150-byte input   createHmac 2.24 µs   composed 1.57 µs
 *   HKDF, 128-byte IKM, 80-byte output  hkdfSync  10.4 µs    composed  7.4 µs
 * (OpenSSL 3 pays for a provider fetch, a KeyObject and a stream object per call.) Megolm runs
 * one HKDF and two HMACs per message, so this is a tenth of a room event's decryption.
 * AES runs unpadded with PKCS#7 done here: `final()` alone cost more than a 200-byte `update()`.
 */
import * as crypto from "node:crypto";
import sodium from "sodium-native";
import type { Sha256Hasher, SymmetricBackend } from "./backend.ts";
import { assertBytes, assertLength, CryptoPrimitiveError } from "./errors.ts";
import { hmacOverSha256 } from "./hmac-over-sha256.ts";
import { AES_BLOCK_LENGTH } from "./limits.ts";
import {
  checkAes,
  checkCbcCiphertext,
  checkHkdf,
  checkPbkdf2,
  checkPbkdf2Steps,
  checkRandomLength,
} from "./validate.ts";

/**
 * A plain Uint8Array the caller owns. Node returns Buffers, which may be views into a shared
 * allocation pool; copy those so that `.buffer` never exposes other data and wiping is local.
 */
export function own(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
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

// HMAC and HKDF over a one-shot SHA-256 into preallocated buffers (see the table above). OpenSSL's
// crypto.hash with a latin1 ("binary") string result is the cheapest call (0.32 µs for 76 bytes, 0.41 µs for
// 192, against 0.47 / 0.82 µs for libsodium into a buffer): no Buffer is made for the digest.
const sha256Into: (out: Uint8Array, input: Uint8Array) => void =
  typeof crypto.hash === "function"
    ? (out, input) => {
        const digest = crypto.hash("sha256", input, "binary"); // "binary" is latin1: one char per byte
        for (let i = 0; i < 32; i++) out[i] = digest.charCodeAt(i);
      }
    : (out, input) => out.set(crypto.createHash("sha256").update(input).digest());
const overSha256 = hmacOverSha256(sha256Into);

function sha256(data: Uint8Array): Uint8Array {
  assertBytes(data, "SHA-256 input");
  const out = new Uint8Array(32);
  sha256Into(out, data);
  return out;
}

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
  return own(crypto.pbkdf2Sync(password, salt, iterations, length, "sha512"));
}

function pbkdf2Sha512Async(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Promise<Uint8Array> {
  checkPbkdf2(password, salt, iterations, length);
  return new Promise((resolve, reject) => {
    crypto.pbkdf2(password, salt, iterations, length, "sha512", (err, key) =>
      err ? reject(err) : resolve(own(key)),
    );
  });
}

const SHA512_BLOCK = 128;

// HMAC-SHA-512 for the stepped PBKDF2. Where OpenSSL's one-shot `crypto.hash` exists, each call
// hashes pad || data into preallocated buffers with a "binary" (latin1) result (no digest Buffers): measured
// 2.8 µs per PBKDF2 iteration against 4.4 µs for copying precomputed hash states (`copy()`), so
// about 3x the one-shot pbkdf2Sync rather than about 5x. Without `crypto.hash`, the state copies.
function createHmacSha512(key: Uint8Array): (data: Uint8Array) => Uint8Array {
  checkPbkdf2Steps(key);
  const block = new Uint8Array(SHA512_BLOCK);
  block.set(key.length > SHA512_BLOCK ? crypto.createHash("sha512").update(key).digest() : key);
  const innerPad = new Uint8Array(SHA512_BLOCK);
  const outerPad = new Uint8Array(SHA512_BLOCK);
  for (let i = 0; i < SHA512_BLOCK; i++) {
    innerPad[i] = (block[i] ?? 0) ^ 0x36;
    outerPad[i] = (block[i] ?? 0) ^ 0x5c;
  }
  block.fill(0);
  if (typeof crypto.hash !== "function") {
    const inner = crypto.createHash("sha512").update(innerPad);
    const outer = crypto.createHash("sha512").update(outerPad);
    innerPad.fill(0);
    outerPad.fill(0);
    return (data) => {
      assertBytes(data, "HMAC input");
      return own(outer.copy().update(inner.copy().update(data).digest()).digest());
    };
  }
  // pad || 64-byte message buffers, reused: PBKDF2 feeds each digest back in.
  const innerBuf = new Uint8Array(SHA512_BLOCK + 64);
  innerBuf.set(innerPad);
  const outerBuf = new Uint8Array(SHA512_BLOCK + 64);
  outerBuf.set(outerPad);
  return (data) => {
    assertBytes(data, "HMAC input");
    let innerInput = innerBuf;
    if (data.length === 64) innerBuf.set(data, SHA512_BLOCK);
    else {
      innerInput = new Uint8Array(SHA512_BLOCK + data.length);
      innerInput.set(innerPad);
      innerInput.set(data, SHA512_BLOCK);
    }
    const innerDigest = crypto.hash("sha512", innerInput, "binary");
    for (let i = 0; i < 64; i++) outerBuf[SHA512_BLOCK + i] = innerDigest.charCodeAt(i);
    const digest = crypto.hash("sha512", outerBuf, "binary");
    const out = new Uint8Array(64);
    for (let i = 0; i < 64; i++) out[i] = digest.charCodeAt(i);
    return out;
  };
}

// OpenSSL's `final()` costs more than the whole `update()` at message sizes (measured 5.7 µs for
// update + final against 2.2 µs for update alone on a 200-byte AES-CBC decryption), so padding is
// done here and the cipher runs unpadded: `update()` then returns every block.
function rawCipher(
  mode: "encrypt" | "decrypt",
  algorithm: "aes-256-cbc" | "aes-256-ctr",
  key: Uint8Array,
  iv: Uint8Array,
  input: Uint8Array,
): Uint8Array {
  const c =
    mode === "encrypt"
      ? crypto.createCipheriv(algorithm, key, iv)
      : crypto.createDecipheriv(algorithm, key, iv);
  c.setAutoPadding(false);
  return own(c.update(input));
}

// The padded copy of a message-sized plaintext is written into this buffer, allocated once, and
// wiped after use (synchronous, single-threaded): a new array of that size is allocated off V8's
// heap, which costs about 0.5 µs in a loop and about 2 µs between curve operations (an Olm session
// set-up's first message), CPU time measured with alternating batches.
const PADDED_SCRATCH = new Uint8Array(4096);

function aes256CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  checkAes(key, iv, plaintext);
  const pad = AES_BLOCK_LENGTH - (plaintext.length % AES_BLOCK_LENGTH);
  const length = plaintext.length + pad;
  const padded =
    length <= PADDED_SCRATCH.length ? PADDED_SCRATCH.subarray(0, length) : new Uint8Array(length);
  padded.set(plaintext);
  padded.fill(pad, plaintext.length);
  try {
    return rawCipher("encrypt", "aes-256-cbc", key, iv, padded);
  } finally {
    padded.fill(0);
  }
}

function aes256CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  checkAes(key, iv, ciphertext);
  checkCbcCiphertext(ciphertext);
  const padded = rawCipher("decrypt", "aes-256-cbc", key, iv, ciphertext);
  // PKCS#7: the last byte n is 1..16 and the last n bytes all equal n. Checked without branching
  // on the bytes (callers authenticate first, but a padding oracle should not exist regardless).
  const n = padded[padded.length - 1]!;
  let bad = ((n - 1) >>> 8) | ((AES_BLOCK_LENGTH - n) >>> 31);
  for (let i = 1; i <= AES_BLOCK_LENGTH; i++) {
    const inPad = ((i - n - 1) >>> 31) & 1; // 1 when i <= n
    bad |= inPad * (padded[padded.length - i]! ^ n);
  }
  if (bad !== 0) {
    padded.fill(0);
    throw new CryptoPrimitiveError("BAD_PADDING", "AES-CBC padding is invalid");
  }
  // A view, not a copy: the bytes past its end are only the padding, all equal to n.
  return padded.subarray(0, padded.length - n);
}

function aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkAes(key, iv, data);
  // OpenSSL's AES-CTR increments the whole 16-byte block as one big-endian counter, as required.
  return rawCipher("encrypt", "aes-256-ctr", key, iv, data);
}

// Keys and IVs (up to 64 bytes) come from libsodium's `randombytes_buf` (by default the operating
// system's generator: getrandom on Linux), written into a buffer kept off V8's heap and copied out: Node's
// `randomFillSync` builds a job object per call and moves a small array off the heap first, which
// measured 1.84 µs per 64 bytes against 0.61 µs (CPU time, alternating batches, this machine); it is
// the randomness of every Olm session set-up. Longer requests stay with OpenSSL's generator, which
// is faster per byte (2.1 µs per KiB against 3.9 µs).
const SMALL_RANDOM = 64;
const randomScratch = new Uint8Array(new ArrayBuffer(SMALL_RANDOM));

function randomBytes(length: number): Uint8Array {
  checkRandomLength(length);
  if (length > SMALL_RANDOM) return crypto.randomFillSync(new Uint8Array(length));
  const view = randomScratch.subarray(0, length);
  sodium.randombytes_buf(view);
  const out = view.slice();
  view.fill(0);
  return out;
}

// OpenSSL is native already: the asynchronous forms are the synchronous ones.
async function hkdfSha256Async(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  return hkdfSha256(ikm, salt, info, length);
}
async function hmacSha256Async(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  return hmacSha256(key, data);
}
async function aes256CbcDecryptAsync(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Uint8Array> {
  return aes256CbcDecrypt(key, iv, ciphertext);
}

export const symmetricBackend: SymmetricBackend = {
  name: "node",
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
