/**
 * The two ways a Megolm ratchet travels between devices (megolm.md "Session sharing format" and
 * "Session export format"), all integers big-endian:
 *
 *   v2 session key (m.room_key):  0x02 | i (4) | R0..R3 (128) | Ed25519 key (32) | signature (64)
 *   v1 export (forwarded keys,    0x01 | i (4) | R0..R3 (128) | Ed25519 key (32)
 *      key-export files)
 *
 * The v2 signature is made with the session's own signing key over the first 165 bytes. The v1
 * form has no signature: whoever forwarded it vouches for it.
 */
import {
  CryptoPrimitiveError,
  decodeBase64,
  ED25519_PUBLIC_KEY_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  ed25519Sign,
  ed25519Verify,
  encodeBase64,
} from "../primitives/index.ts";
import { MegolmError } from "./errors.ts";
import { RATCHET_LENGTH, Ratchet } from "./ratchet.ts";

export const SESSION_KEY_VERSION = 2;
export const EXPORTED_KEY_VERSION = 1;
const BODY_LENGTH = 1 + 4 + RATCHET_LENGTH + ED25519_PUBLIC_KEY_LENGTH;
/** 229 bytes. */
export const SESSION_KEY_LENGTH = BODY_LENGTH + ED25519_SIGNATURE_LENGTH;
/** 165 bytes. */
export const EXPORTED_KEY_LENGTH = BODY_LENGTH;

export interface DecodedSessionKey {
  readonly ratchet: Ratchet;
  readonly signingKey: Uint8Array;
}

function writeBody(out: Uint8Array, version: number, ratchet: Ratchet, signingKey: Uint8Array): void {
  out[0] = version;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(1, ratchet.counter, false);
  out.set(ratchet.bytes, 5);
  out.set(signingKey, 5 + RATCHET_LENGTH);
}

/** The signed v2 session key. `signingSecret` is seed || public key. */
export function encodeSessionKey(ratchet: Ratchet, signingSecret: Uint8Array): string {
  const out = new Uint8Array(SESSION_KEY_LENGTH);
  writeBody(out, SESSION_KEY_VERSION, ratchet, signingSecret.subarray(32, 64));
  out.set(ed25519Sign(signingSecret, out.subarray(0, BODY_LENGTH)), BODY_LENGTH);
  const text = encodeBase64(out);
  out.fill(0);
  return text;
}

/** The unsigned v1 export of `ratchet`. */
export function encodeExportedKey(ratchet: Ratchet, signingKey: Uint8Array): string {
  const out = new Uint8Array(EXPORTED_KEY_LENGTH);
  writeBody(out, EXPORTED_KEY_VERSION, ratchet, signingKey);
  const text = encodeBase64(out);
  out.fill(0);
  return text;
}

function badKey(reason: string): MegolmError {
  return new MegolmError("BAD_SESSION_KEY", `invalid Megolm session key: ${reason}`);
}

function decode(key: string, version: number, length: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(key);
  } catch (e) {
    if (e instanceof CryptoPrimitiveError) throw badKey("not valid base64");
    throw e;
  }
  if (bytes.length < 1) throw badKey("empty");
  if (bytes[0] !== version) {
    bytes.fill(0);
    throw badKey(`expected version ${version}, got ${bytes[0]}`);
  }
  if (bytes.length !== length) {
    bytes.fill(0);
    throw badKey(`expected ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

function split(bytes: Uint8Array): DecodedSessionKey {
  const counter = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1, false);
  const ratchet = new Ratchet(bytes.slice(5, 5 + RATCHET_LENGTH), counter);
  const signingKey = bytes.slice(5 + RATCHET_LENGTH, BODY_LENGTH);
  bytes.fill(0);
  return { ratchet, signingKey };
}

/** Parses a v2 session key and checks its self-signature. */
export function decodeSessionKey(key: string): DecodedSessionKey {
  const bytes = decode(key, SESSION_KEY_VERSION, SESSION_KEY_LENGTH);
  const body = bytes.subarray(0, BODY_LENGTH);
  const signingKey = bytes.subarray(5 + RATCHET_LENGTH, BODY_LENGTH);
  if (!ed25519Verify(signingKey, body, bytes.subarray(BODY_LENGTH))) {
    bytes.fill(0);
    throw new MegolmError("BAD_SIGNATURE", "the session key's signature does not verify");
  }
  return split(bytes);
}

/** Parses a v1 exported key. */
export function decodeExportedKey(key: string): DecodedSessionKey {
  return split(decode(key, EXPORTED_KEY_VERSION, EXPORTED_KEY_LENGTH));
}
