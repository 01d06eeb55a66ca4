/**
 * `m.secret_storage.v1.aes-hmac-sha2`: each secret is encrypted under keys derived for its name
 * (HKDF-SHA-256, 32 zero bytes of salt, info = the secret's name → AES-256-CTR key || HMAC-SHA-256
 * key), with a random IV whose bit 63 is cleared (so the 64-bit counter half never wraps, which
 * some implementations' CTR modes do not handle). The MAC covers the ciphertext only.
 */
import {
  aes256Ctr,
  CryptoPrimitiveError,
  constantTimeEqual,
  decodeBase64,
  encodeBase64,
  hkdfSha256,
  hmacSha256,
  randomBytes,
  utf8Decode,
  utf8Encode,
  wipe,
} from "../primitives/symmetric.ts";
import { SecretStorageError, type SecretStorageErrorCode } from "./errors.ts";

export const AES_HMAC_SHA2_ALGORITHM = "m.secret_storage.v1.aes-hmac-sha2";
/** A secret storage key is 32 bytes. */
export const SECRET_STORAGE_KEY_LENGTH = 32;
const IV_LENGTH = 16;
const MAC_LENGTH = 32;
/**
 * The largest ciphertext we decrypt (base64 characters). Secrets are keys (a few dozen bytes);
 * this bounds what a hostile server can make us process.
 */
export const MAX_SECRET_CIPHERTEXT_LENGTH = 64 * 1024;

/** One secret encrypted for one key, as stored under `encrypted.<key id>` in account data. */
export interface AesHmacSha2EncryptedSecret {
  readonly iv: string;
  readonly ciphertext: string;
  readonly mac: string;
}

/** The key-check fields of a key description: proof of the key without revealing it. */
export interface KeyCheck {
  readonly iv: string;
  readonly mac: string;
}

const ZERO_SALT = new Uint8Array(32);

function assertKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== SECRET_STORAGE_KEY_LENGTH) {
    throw new SecretStorageError("BAD_ARGUMENT", "a secret storage key is 32 bytes");
  }
}

/** Padded base64, as Element, matrix-js-sdk and the rust-sdk write these fields. */
function b64(bytes: Uint8Array): string {
  const s = encodeBase64(bytes);
  return s + "=".repeat((4 - (s.length % 4)) % 4);
}

function newIv(): Uint8Array {
  const iv = randomBytes(IV_LENGTH);
  iv[8] = (iv[8] ?? 0) & 0x7f;
  return iv;
}

function deriveKeys(key: Uint8Array, name: string): { aesKey: Uint8Array; macKey: Uint8Array } {
  let info: Uint8Array;
  try {
    info = utf8Encode(name);
  } catch {
    throw new SecretStorageError("BAD_ARGUMENT", "the secret name is not well-formed Unicode");
  }
  const okm = hkdfSha256(key, ZERO_SALT, info, 64);
  const keys = { aesKey: okm.slice(0, 32), macKey: okm.slice(32, 64) };
  wipe(okm);
  return keys;
}

function decodeField(
  value: unknown,
  what: string,
  length: number | undefined,
  code: SecretStorageErrorCode,
): Uint8Array {
  if (typeof value !== "string") throw new SecretStorageError(code, `${what} must be a string`);
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(value);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw new SecretStorageError(code, `${what} is not base64`);
    throw e;
  }
  if (length !== undefined && bytes.length !== length) {
    throw new SecretStorageError(code, `${what} must be ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

function encryptBytes(key: Uint8Array, name: string, plaintext: Uint8Array, iv: Uint8Array) {
  const { aesKey, macKey } = deriveKeys(key, name);
  const ciphertext = aes256Ctr(aesKey, iv, plaintext);
  const mac = hmacSha256(macKey, ciphertext);
  wipe(aesKey);
  wipe(macKey);
  return { ciphertext, mac };
}

/**
 * Encrypts `secret` (the string stored under `name`, e.g. an unpadded base64 private key) for
 * `key`. `iv` is for known-answer tests only; normally a fresh one is drawn.
 */
export function encryptSecret(
  key: Uint8Array,
  name: string,
  secret: string,
  iv: Uint8Array = newIv(),
): AesHmacSha2EncryptedSecret {
  assertKey(key);
  if (typeof name !== "string" || typeof secret !== "string") {
    throw new SecretStorageError("BAD_ARGUMENT", "secret name and value are strings");
  }
  if (!(iv instanceof Uint8Array) || iv.length !== IV_LENGTH) {
    throw new SecretStorageError("BAD_ARGUMENT", "the IV is 16 bytes");
  }
  let plaintext: Uint8Array;
  try {
    plaintext = utf8Encode(secret);
  } catch {
    throw new SecretStorageError("BAD_ARGUMENT", "the secret is not well-formed Unicode");
  }
  const { ciphertext, mac } = encryptBytes(key, name, plaintext, iv);
  wipe(plaintext);
  return { iv: b64(iv), ciphertext: b64(ciphertext), mac: b64(mac) };
}

/**
 * Decrypts one stored secret. `BAD_ENCRYPTED_SECRET` when the record is malformed, `BAD_MAC` when
 * its MAC does not check out (a corrupt secret, provided the key passed its key check), and
 * `BAD_SECRET` when the plaintext is not UTF-8.
 */
export function decryptSecret(key: Uint8Array, name: string, encrypted: unknown): string {
  assertKey(key);
  if (typeof name !== "string") throw new SecretStorageError("BAD_ARGUMENT", "the secret name is a string");
  const { iv, ciphertext, mac } = decodeEncryptedSecret(encrypted);
  const { aesKey, macKey } = deriveKeys(key, name);
  try {
    if (!constantTimeEqual(hmacSha256(macKey, ciphertext), mac)) {
      throw new SecretStorageError("BAD_MAC", `the stored secret ${name} does not check out (corrupt)`);
    }
    const plaintext = aes256Ctr(aesKey, iv, ciphertext);
    try {
      return utf8Decode(plaintext);
    } catch {
      throw new SecretStorageError("BAD_SECRET", `the secret ${name} is not UTF-8`);
    } finally {
      wipe(plaintext);
    }
  } finally {
    wipe(aesKey);
    wipe(macKey);
  }
}

/** The key check for a new key description: 32 zero bytes encrypted under the name "". */
export function computeKeyCheck(key: Uint8Array, iv: Uint8Array = newIv()): KeyCheck {
  assertKey(key);
  if (!(iv instanceof Uint8Array) || iv.length !== IV_LENGTH) {
    throw new SecretStorageError("BAD_ARGUMENT", "the IV is 16 bytes");
  }
  const { mac } = encryptBytes(key, "", new Uint8Array(32), iv);
  return { iv: b64(iv), mac: b64(mac) };
}

/**
 * Whether `key` is the key a description's check was made with. `"verified"` when the check
 * passed; `"unverifiable"` when the description has no `iv`/`mac` (the spec says to assume the
 * key is right then, and a later secret's MAC is the first real test). Throws `WRONG_KEY` when the
 * check fails, `BAD_KEY_DESCRIPTION` when the check fields are malformed.
 */
export function checkKey(
  key: Uint8Array,
  check: { readonly iv?: unknown; readonly mac?: unknown },
): "verified" | "unverifiable" {
  assertKey(key);
  if (check.iv === undefined && check.mac === undefined) return "unverifiable";
  const code = "BAD_KEY_DESCRIPTION";
  const iv = decodeField(check.iv, "key check iv", IV_LENGTH, code);
  const expected = decodeField(check.mac, "key check mac", MAC_LENGTH, code);
  const { mac } = encryptBytes(key, "", new Uint8Array(32), iv);
  if (!constantTimeEqual(mac, expected)) {
    throw new SecretStorageError("WRONG_KEY", "this recovery key or passphrase is not the one of this key");
  }
  return "verified";
}

/** Validates key-check fields without a key (for parsing key descriptions). */
export function validateKeyCheck(check: { readonly iv?: unknown; readonly mac?: unknown }): void {
  if (check.iv === undefined && check.mac === undefined) return;
  decodeField(check.iv, "key check iv", IV_LENGTH, "BAD_KEY_DESCRIPTION");
  decodeField(check.mac, "key check mac", MAC_LENGTH, "BAD_KEY_DESCRIPTION");
}

function decodeEncryptedSecret(encrypted: unknown): {
  iv: Uint8Array;
  ciphertext: Uint8Array;
  mac: Uint8Array;
} {
  if (typeof encrypted !== "object" || encrypted === null || Array.isArray(encrypted)) {
    throw new SecretStorageError("BAD_ENCRYPTED_SECRET", "an encrypted secret is an object");
  }
  const r = encrypted as Record<string, unknown>;
  const code = "BAD_ENCRYPTED_SECRET";
  if (typeof r.ciphertext === "string" && r.ciphertext.length > MAX_SECRET_CIPHERTEXT_LENGTH) {
    throw new SecretStorageError(code, "the ciphertext is too long to be a secret");
  }
  return {
    iv: decodeField(r.iv, "iv", IV_LENGTH, code),
    ciphertext: decodeField(r.ciphertext, "ciphertext", undefined, code),
    mac: decodeField(r.mac, "mac", MAC_LENGTH, code),
  };
}

/** Validates an encrypted secret record's shape and sizes without a key. */
export function validateEncryptedSecret(encrypted: unknown): AesHmacSha2EncryptedSecret {
  decodeEncryptedSecret(encrypted);
  const r = encrypted as Record<string, string>;
  return { iv: r.iv as string, ciphertext: r.ciphertext as string, mac: r.mac as string };
}
