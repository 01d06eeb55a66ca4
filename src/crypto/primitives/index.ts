/**
 * Keyroom's cryptographic primitives: the one module every protocol imports. The functions are
 * bound to the back end the package `imports` map selects for this runtime (`#primitives-backend`:
 * libsodium + node:crypto on Node, @noble/* elsewhere or with the `keyroom-noble` condition).
 */
import { backend } from "#primitives-backend";
import type { Sha256Hasher } from "./backend.ts";
import { createPbkdf2Sha512Steps as createSteps, type Pbkdf2Sha512Steps } from "./pbkdf2-steps.ts";
import { subtleCrypto, webAes256Ctr, webSha256 } from "./web-crypto.ts";

export type { CryptoBackend, Sha256Hasher } from "./backend.ts";
export {
  decodeArmouredBase64,
  decodeBase64,
  decodeBase64Url,
  encodeBase64,
  encodeBase64Url,
} from "./base64.ts";
export {
  concatBytes,
  constantTimeEqual,
  constantTimeEqualAt,
  utf8Decode,
  utf8Encode,
  wipe,
} from "./bytes.ts";
export { CryptoPrimitiveError, type CryptoPrimitiveErrorCode } from "./errors.ts";
export * from "./limits.ts";
export type { Pbkdf2Sha512Steps } from "./pbkdf2-steps.ts";
export {
  generateNonExtractableKey,
  openWithCryptoKey,
  sealWithCryptoKey,
  webCryptoAvailable,
} from "./web-key.ts";

/** "node" or "noble". */
export const backendName: string = backend.name;

export const randomBytes: (length: number) => Uint8Array = backend.randomBytes;
export const sha256: (data: Uint8Array) => Uint8Array = backend.sha256;
export const createSha256: () => Sha256Hasher = backend.createSha256;
export const hmacSha256: (key: Uint8Array, data: Uint8Array) => Uint8Array = backend.hmacSha256;
export const hkdfSha256: (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number) => Uint8Array =
  backend.hkdfSha256;
export const hkdfSha256Into: (out: Uint8Array, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array) => void =
  backend.hkdfSha256Into;
export const pbkdf2Sha512: (
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
) => Uint8Array = backend.pbkdf2Sha512;
/** `pbkdf2Sha512` off the calling thread where the runtime can (Node's thread pool, Web Crypto). */
export const pbkdf2Sha512Async: (
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
) => Promise<Uint8Array> = backend.pbkdf2Sha512Async;
/**
 * PBKDF2-HMAC-SHA-512 in bounded steps, for a progress bar on slow passphrase derivations (same
 * output as `pbkdf2Sha512`, several times slower on Node).
 */
export function createPbkdf2Sha512Steps(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Pbkdf2Sha512Steps {
  return createSteps(backend.createHmacSha512, password, salt, iterations, length);
}
export const chacha20Poly1305Encrypt: (
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
) => Uint8Array = backend.chacha20Poly1305Encrypt;
export const chacha20Poly1305Decrypt: (
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
) => Uint8Array = backend.chacha20Poly1305Decrypt;
export const aes256CbcEncrypt: (key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array) => Uint8Array =
  backend.aes256CbcEncrypt;
export const aes256CbcDecrypt: (key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array) => Uint8Array =
  backend.aes256CbcDecrypt;
export const aes256Ctr: (key: Uint8Array, iv: Uint8Array, data: Uint8Array) => Uint8Array = backend.aes256Ctr;
/**
 * Web Crypto for whole attachments where the back end is JavaScript (browsers); the back end
 * itself elsewhere (Node's OpenSSL is as fast, and synchronous).
 */
function attachmentSubtle(key: Uint8Array, iv: Uint8Array): SubtleCrypto | undefined {
  // Wrong lengths go to the back end, which refuses them with its typed error.
  if (backend.name !== "noble" || key.length !== 32 || iv.length !== 16) return undefined;
  return subtleCrypto();
}
/** `aes256Ctr` for big buffers (attachments): Web Crypto in browsers, same result. */
export async function aes256CtrAsync(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const subtle = attachmentSubtle(key, iv);
  return subtle === undefined ? backend.aes256Ctr(key, iv, data) : webAes256Ctr(subtle, key, iv, data);
}
/** `sha256` for big buffers (attachments): Web Crypto in browsers, same result. */
export async function sha256Async(data: Uint8Array): Promise<Uint8Array> {
  // Anything but bytes goes to the back end, which refuses it with its typed error.
  const subtle = backend.name === "noble" && data instanceof Uint8Array ? subtleCrypto() : undefined;
  return subtle === undefined ? backend.sha256(data) : webSha256(subtle, data);
}
export const x25519PublicKey: (secretKey: Uint8Array) => Uint8Array = backend.x25519PublicKey;
/**
 * X25519 shared secret. Throws `NON_CONTRIBUTORY_KEY` when the peer's key is a low-order point, so
 * the "shared" secret would be all zeros and known to anyone. vodozemac refuses such keys the same
 * way (`NonContributoryKey` in session creation and ratchet steps); libolm does not check and
 * would derive keys from the zeros. Honest peers never produce these keys (a clamped secret
 * scalar times the base point is never low-order), so refusing them interoperates with both.
 */
export const x25519: (secretKey: Uint8Array, publicKey: Uint8Array) => Uint8Array = backend.x25519;
export const ed25519PublicKey: (seed: Uint8Array) => Uint8Array = backend.ed25519PublicKey;
/** `secretKey` is seed || public key (64 bytes). */
export const ed25519Sign: (secretKey: Uint8Array, message: Uint8Array) => Uint8Array = backend.ed25519Sign;
export const ed25519Verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean =
  backend.ed25519Verify;

/**
 * True where the asynchronous per-message primitives below run native code that the synchronous
 * ones do not: the JavaScript back end in a runtime with Web Crypto (browsers). A hot path that is
 * asynchronous anyway takes the `…Async` forms then, and the synchronous ones otherwise (on Node
 * they are the same native code, and a promise per call only costs).
 */
export const asyncPrimitivesFaster: boolean = backend.name === "noble" && subtleCrypto() !== undefined;
/** `ed25519Verify` through Web Crypto in browsers: the same verdicts (see web-ed25519.ts). */
export const ed25519VerifyAsync: (
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean> = backend.ed25519VerifyAsync;
/** `hkdfSha256`, through Web Crypto in browsers. */
export const hkdfSha256Async: (
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
) => Promise<Uint8Array> = backend.hkdfSha256Async;
/** `hmacSha256`, through Web Crypto in browsers. */
export const hmacSha256Async: (key: Uint8Array, data: Uint8Array) => Promise<Uint8Array> =
  backend.hmacSha256Async;
/** `aes256CbcDecrypt`, through Web Crypto in browsers; rejects with the same errors. */
export const aes256CbcDecryptAsync: (
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
) => Promise<Uint8Array> = backend.aes256CbcDecryptAsync;
