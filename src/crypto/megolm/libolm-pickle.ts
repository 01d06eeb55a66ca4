/**
 * Reading Megolm inbound sessions pickled by libolm, so that keys kept by libolm-based clients
 * (matrix-nio, pantalaimon, older matrix-js-sdk stores) can be imported instead of lost.
 *
 * libolm's pickle encryption: HKDF-SHA-256(pickle key, salt = empty, info = "Pickle") to 80
 * bytes (AES-256 key, HMAC key, IV); AES-256-CBC over the raw pickle; HMAC-SHA-256 over the
 * ciphertext truncated to 8 bytes and appended; unpadded base64 over the whole.
 *
 * Inbound session pickle, version 2 (integers big-endian): version u32 | initial ratchet (128) |
 * initial counter u32 | latest ratchet (128) | latest counter u32 | Ed25519 key (32) | verified (1).
 *
 * Outbound sessions are not read: libolm keeps their Ed25519 key in expanded (hashed) form, from
 * which the seed our signing primitive takes cannot be recovered; rotate them instead.
 */
import {
  aes256CbcDecrypt,
  CryptoPrimitiveError,
  constantTimeEqual,
  decodeBase64,
  hkdfSha256,
  hmacSha256,
  utf8Encode,
  wipe,
} from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";
import { RATCHET_LENGTH } from "./ratchet.ts";

const KDF_INFO = utf8Encode("Pickle");
const MAC_LENGTH = 8;
export const LIBOLM_INBOUND_PICKLE_VERSION = 2;
const INBOUND_LENGTH = 4 + (RATCHET_LENGTH + 4) * 2 + 32 + 1;

function bad(reason: string): MegolmError {
  return new MegolmError("BAD_PICKLE", `libolm pickle refused: ${reason}`);
}

/** The pickle key as bytes: libolm's JS and Python bindings take strings as UTF-8. */
export function pickleKeyBytes(key: string | Uint8Array): Uint8Array {
  if (key instanceof Uint8Array) return key;
  if (typeof key !== "string") throw new MegolmError("BAD_ARGUMENT", "pickle key must be a string or bytes");
  try {
    return utf8Encode(key);
  } catch {
    throw new MegolmError("BAD_ARGUMENT", "pickle key has no UTF-8 form");
  }
}

/** Authenticates and decrypts a libolm pickle; the caller wipes the returned bytes. */
export function decryptLibolmPickle(pickle: string, key: Uint8Array): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = decodeBase64(pickle);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw bad("not valid base64");
    throw e;
  }
  if (raw.length < 16 + MAC_LENGTH) throw bad("too short");
  const ciphertext = raw.subarray(0, raw.length - MAC_LENGTH);
  const keys = hkdfSha256(key, new Uint8Array(0), KDF_INFO, 80);
  try {
    const mac = hmacSha256(keys.subarray(32, 64), ciphertext).subarray(0, MAC_LENGTH);
    if (!constantTimeEqual(mac, raw.subarray(raw.length - MAC_LENGTH)))
      throw bad("wrong key or corrupted pickle");
    try {
      return aes256CbcDecrypt(keys.subarray(0, 32), keys.subarray(64, 80), ciphertext);
    } catch (e) {
      if (e instanceof CryptoPrimitiveError) throw bad("ciphertext does not decrypt");
      throw e;
    }
  } finally {
    wipe(keys);
  }
}

export interface LibolmInboundPickle {
  readonly ratchet: Uint8Array;
  readonly counter: number;
  readonly signingKey: Uint8Array;
  readonly signingKeyVerified: boolean;
}

/** Parses a decrypted inbound session pickle. The latest ratchet is a cache and is dropped. */
export function parseLibolmInboundPickle(bytes: Uint8Array): LibolmInboundPickle {
  if (bytes.length !== INBOUND_LENGTH) throw bad(`expected ${INBOUND_LENGTH} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(0, false);
  if (version !== LIBOLM_INBOUND_PICKLE_VERSION) throw bad(`unsupported inbound session version ${version}`);
  const ratchet = bytes.slice(4, 4 + RATCHET_LENGTH);
  const counter = view.getUint32(4 + RATCHET_LENGTH, false);
  const keyAt = 4 + (RATCHET_LENGTH + 4) * 2;
  const signingKey = bytes.slice(keyAt, keyAt + 32);
  const flag = bytes[keyAt + 32];
  if (flag !== 0 && flag !== 1) throw bad("signing_key_verified is not a boolean");
  return { ratchet, counter, signingKey, signingKeyVerified: flag === 1 };
}
