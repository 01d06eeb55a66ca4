/**
 * One-shot primitives through Web Crypto, for browsers, where the portable back end is JavaScript
 * and the browser's native code is faster: AES-256-CTR and SHA-256 for whole attachments (many
 * times faster on megabytes); HKDF, HMAC-SHA-256 and AES-256-CBC decryption for Megolm messages.
 * Same results as the back ends' `aes256Ctr` (a 128-bit big-endian counter block), `sha256`,
 * `hkdfSha256`, `hmacSha256` and `aes256CbcDecrypt`; callers check arguments first.
 */

/** Web Crypto, when the runtime has it. */
export function subtleCrypto(): SubtleCrypto | undefined {
  return globalThis.crypto?.subtle;
}

export async function webAes256Ctr(
  subtle: SubtleCrypto,
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
): Promise<Uint8Array> {
  const k = await subtle.importKey("raw", new Uint8Array(key), "AES-CTR", false, ["encrypt"]);
  // `length: 128`: the whole block is the counter, as in the back ends.
  const params = { name: "AES-CTR", counter: new Uint8Array(iv), length: 128 };
  return new Uint8Array(await subtle.encrypt(params, k, new Uint8Array(data)));
}

export async function webSha256(subtle: SubtleCrypto, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle.digest("SHA-256", new Uint8Array(data)));
}

const HMAC_SHA256 = { name: "HMAC", hash: "SHA-256" } as const;

/** HKDF-SHA-256 (`ikm` and `length` non-zero: engines may refuse an empty key or output). */
export async function webHkdfSha256(
  subtle: SubtleCrypto,
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const k = await subtle.importKey("raw", new Uint8Array(ikm), "HKDF", false, ["deriveBits"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(salt), info: new Uint8Array(info) };
  return new Uint8Array(await subtle.deriveBits(params, k, length * 8));
}

/** HMAC-SHA-256 (`key` non-empty: Web Crypto refuses an empty HMAC key). */
export async function webHmacSha256(
  subtle: SubtleCrypto,
  key: Uint8Array,
  data: Uint8Array,
): Promise<Uint8Array> {
  const k = await subtle.importKey("raw", new Uint8Array(key), HMAC_SHA256, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, new Uint8Array(data)));
}

/** AES-256-CBC with PKCS#7 padding; rejects (the engine's own error) on a bad pad. */
export async function webAes256CbcDecrypt(
  subtle: SubtleCrypto,
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
): Promise<Uint8Array> {
  // Every input is copied before the first await: the caller may wipe or reuse its buffers then.
  const params = { name: "AES-CBC", iv: new Uint8Array(iv) };
  const data = new Uint8Array(ciphertext);
  const k = await subtle.importKey("raw", new Uint8Array(key), "AES-CBC", false, ["decrypt"]);
  return new Uint8Array(await subtle.decrypt(params, k, data));
}
