/**
 * The symmetric half of Keyroom's primitives (hashes, MACs, KDFs, AES, randomness, encodings):
 * what the stores and attachments import, bound to the back end the package `imports` map selects
 * for this runtime (`#primitives-symmetric`: node:crypto on Node, @noble/* elsewhere or with the
 * `keyroom-noble` condition). Everything else imports index.ts, which re-exports this module and
 * adds the curves; code on a browser bundle's first chunks (stores, attachments) imports this one,
 * so that those chunks do not carry Curve25519 (test/package/browser-bundle.test.ts holds that).
 */
import { symmetricBackend as backend } from "#primitives-symmetric";
import type { Sha256Hasher } from "./backend.ts";
import { createPbkdf2Sha512Steps as createSteps, type Pbkdf2Sha512Steps } from "./pbkdf2-steps.ts";
import { subtleCrypto, webAes256Ctr, webSha256 } from "./web-crypto.ts";

export type { AeadBackend, CryptoBackend, Sha256Hasher, SymmetricBackend } from "./backend.ts";
export {
  decodeArmouredBase64,
  decodeBase64,
  decodeBase64Scratch,
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
  utf8EncodeInto,
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
/** `hmacSha256` into `out` (exactly 32 bytes, may overlap `key` or `data`). */
export const hmacSha256Into: (out: Uint8Array, key: Uint8Array, data: Uint8Array) => void =
  backend.hmacSha256Into;
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

/**
 * True where the asynchronous per-message primitives below run native code that the synchronous
 * ones do not: the JavaScript back end in a runtime with Web Crypto (browsers). A hot path that is
 * asynchronous anyway takes the `…Async` forms then, and the synchronous ones otherwise (on Node
 * they are the same native code, and a promise per call only costs).
 */
export const asyncPrimitivesFaster: boolean = backend.name === "noble" && subtleCrypto() !== undefined;
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
