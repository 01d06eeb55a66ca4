/**
 * The dehydrated-device pickle of MSC3814 (`org.matrix.msc3814.v2`), byte-compatible with
 * vodozemac's `Account::to_dehydrated_device` / `from_dehydrated_device`: an account's private
 * keys in matrix-pickle encoding, sealed with ChaCha20-Poly1305 under a 32-byte key and a random
 * 12-byte nonce (no associated data), both unpadded base64.
 *
 * Plaintext layout (integers are big-endian u32, booleans one byte 0/1):
 *   version = 1 | Curve25519 secret (32) | Ed25519 seed (32)
 *   | one-time key count | count × Curve25519 secret (32) | fallback present | [fallback secret (32)]
 * Key IDs, "published" flags and the previous fallback key are not in the format: a rehydrated
 * account treats every key as published.
 *
 * Functions of their own rather than `Account` methods: the engine imports account.ts, and this
 * file (with ChaCha20-Poly1305) is loaded only where dehydration is used, a chunk of its own in a
 * browser bundle.
 */
import { chacha20Poly1305Decrypt, chacha20Poly1305Encrypt } from "../../primitives/aead.ts";
import {
  CryptoPrimitiveError,
  decodeBase64,
  encodeBase64,
  randomBytes,
  wipe,
} from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import {
  type Account,
  accountFromDehydratedKeys,
  type DehydratedAccountKeys,
  dehydratedKeysOf,
} from "./account.ts";
import { MAX_ONE_TIME_KEYS } from "./one-time-keys.ts";

export type { DehydratedAccountKeys };

export const DEHYDRATED_DEVICE_PICKLE_VERSION = 1;
/** The `device_data.algorithm` of this format in MSC3814's unstable namespace. */
export const DEHYDRATED_DEVICE_ALGORITHM = "org.matrix.msc3814.v2";
const NONCE_LENGTH = 12;
const KEY_LENGTH = 32;

/** What `to_dehydrated_device` returns: the sealed pickle and its nonce, unpadded base64. */
export interface DehydratedDevicePickle {
  readonly ciphertext: string;
  readonly nonce: string;
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
    throw new OlmError("BAD_ARGUMENT", "a dehydrated-device key is 32 bytes");
  }
}

export function encodeDehydratedAccount(keys: DehydratedAccountKeys): Uint8Array {
  const n = keys.oneTimeKeys.length;
  const fallback = keys.fallbackKey;
  const out = new Uint8Array(4 + 32 + 32 + 4 + 32 * n + 1 + (fallback === null ? 0 : 32));
  const view = new DataView(out.buffer);
  view.setUint32(0, DEHYDRATED_DEVICE_PICKLE_VERSION);
  out.set(keys.curve25519Secret, 4);
  out.set(keys.ed25519Seed, 36);
  view.setUint32(68, n);
  keys.oneTimeKeys.forEach((k, i) => {
    out.set(k, 72 + 32 * i);
  });
  const at = 72 + 32 * n;
  out[at] = fallback === null ? 0 : 1;
  if (fallback !== null) out.set(fallback, at + 1);
  return out;
}

export function decodeDehydratedAccount(bytes: Uint8Array): DehydratedAccountKeys {
  const bad = (why: string) => new OlmError("BAD_PICKLE", `dehydrated device: ${why}`);
  if (bytes.length < 4) throw bad("no version");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(0);
  if (version !== DEHYDRATED_DEVICE_PICKLE_VERSION) throw bad(`unknown version ${version}`);
  if (bytes.length < 72 + 1) throw bad("truncated");
  const n = view.getUint32(68);
  if (n > MAX_ONE_TIME_KEYS) throw bad("too many one-time keys");
  const at = 72 + 32 * n;
  if (bytes.length < at + 1) throw bad("truncated");
  const present = bytes[at];
  if (present !== 0 && present !== 1) throw bad("bad fallback flag");
  if (bytes.length !== at + 1 + (present === 1 ? 32 : 0)) throw bad("wrong length");
  return {
    curve25519Secret: bytes.slice(4, 36),
    ed25519Seed: bytes.slice(36, 68),
    oneTimeKeys: Array.from({ length: n }, (_, i) => bytes.slice(72 + 32 * i, 104 + 32 * i)),
    fallbackKey: present === 1 ? bytes.slice(at + 1, at + 33) : null,
  };
}

/** Seals an account's keys. `nonce` is for known-answer tests; normally a fresh one is drawn. */
export function sealDehydratedAccount(
  keys: DehydratedAccountKeys,
  key: Uint8Array,
  nonce: Uint8Array = randomBytes(NONCE_LENGTH),
): DehydratedDevicePickle {
  checkKey(key);
  const plaintext = encodeDehydratedAccount(keys);
  try {
    const sealed = chacha20Poly1305Encrypt(key, nonce, plaintext);
    return { ciphertext: encodeBase64(sealed), nonce: encodeBase64(nonce) };
  } finally {
    wipe(plaintext);
  }
}

/**
 * Opens a dehydrated device. `DECRYPTION_FAILED` for a wrong key or altered pickle, `BAD_PICKLE`
 * for a malformed one (bad base64, nonce length, version, layout).
 */
export function openDehydratedAccount(
  pickle: DehydratedDevicePickle,
  key: Uint8Array,
): DehydratedAccountKeys {
  checkKey(key);
  if (typeof pickle?.ciphertext !== "string" || typeof pickle.nonce !== "string") {
    throw new OlmError("BAD_PICKLE", "dehydrated device: ciphertext and nonce are strings");
  }
  let sealed: Uint8Array;
  let nonce: Uint8Array;
  try {
    sealed = decodeBase64(pickle.ciphertext);
    nonce = decodeBase64(pickle.nonce);
  } catch {
    throw new OlmError("BAD_PICKLE", "dehydrated device: not base64");
  }
  if (nonce.length !== NONCE_LENGTH)
    throw new OlmError("BAD_PICKLE", "dehydrated device: the nonce is 12 bytes");
  let plaintext: Uint8Array;
  try {
    plaintext = chacha20Poly1305Decrypt(key, nonce, sealed);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError && e.code === "BAD_LENGTH") {
      throw new OlmError("BAD_PICKLE", "dehydrated device: shorter than its tag");
    }
    if (e instanceof CryptoPrimitiveError) {
      throw new OlmError("DECRYPTION_FAILED", "dehydrated device: wrong key or altered pickle");
    }
    throw e;
  }
  try {
    return decodeDehydratedAccount(plaintext);
  } finally {
    wipe(plaintext);
  }
}

/**
 * `account` as a dehydrated device (MSC3814, vodozemac's `to_dehydrated_device`): identity keys,
 * one-time keys and the current fallback key, sealed under the 32-byte `key`. Sessions are not
 * included.
 */
export function toDehydratedDevice(account: Account, key: Uint8Array): DehydratedDevicePickle {
  const keys = dehydratedKeysOf(account);
  try {
    return sealDehydratedAccount(keys, key);
  } finally {
    for (const k of [...keys.oneTimeKeys, keys.curve25519Secret, keys.ed25519Seed]) wipe(k);
    if (keys.fallbackKey !== null) wipe(keys.fallbackKey);
  }
}

/**
 * Rehydrates a device made by `toDehydratedDevice` (ours or vodozemac's). Every key comes back as
 * published; key IDs are renumbered from 1 (the format does not keep them). Throws `OlmError`
 * `DECRYPTION_FAILED` for a wrong key, `BAD_PICKLE` for a malformed pickle.
 */
export function fromDehydratedDevice(pickle: DehydratedDevicePickle, key: Uint8Array): Account {
  return accountFromDehydratedKeys(openDehydratedAccount(pickle, key));
}
