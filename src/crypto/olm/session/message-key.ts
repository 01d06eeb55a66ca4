/**
 * What one message key does (spec: "Sending messages", "Receiving messages"):
 * AES_KEY(32) || HMAC_KEY(32) || AES_IV(16) = HKDF(salt = none, ikm = M(i,j), info = "OLM_KEYS", 80);
 * the payload is AES-256-CBC (PKCS#7), and the message ends with HMAC-SHA-256 truncated to 8 bytes.
 */
import {
  aes256CbcDecrypt,
  aes256CbcEncrypt,
  CryptoPrimitiveError,
  constantTimeEqualAt,
  hkdfSha256Into,
  hmacSha256,
  utf8Encode,
  wipe,
} from "../../primitives/index.ts";
import { OlmError } from "../errors.ts";
import {
  type DecodedMessage,
  MESSAGE_MAC_LENGTH,
  messageLength,
  writeMessageBody,
} from "../message/message.ts";
import { preKeyMessageLength, writePreKeyHeader } from "../message/prekey-message.ts";

const KEYS_INFO = utf8Encode("OLM_KEYS");
const NO_SALT = new Uint8Array(0);

// One buffer and its views for every message's keys, as Megolm's cipher.ts: sealing and opening are
// synchronous and wipe it before returning. A fresh 80-byte array is allocated off V8's heap, which
// after the curve operations of a session set-up measured about 2 µs (CPU time, alternating batches).
const KEYS = new Uint8Array(80);
const AES_KEY = KEYS.subarray(0, 32);
const MAC_KEY = KEYS.subarray(32, 64);
const AES_IV = KEYS.subarray(64, 80);

/** The public keys a pre-key message carries around its inner message. */
export interface PreKeyWrapping {
  readonly oneTimeKey: Uint8Array;
  readonly baseKey: Uint8Array;
  readonly identityKey: Uint8Array;
}

/**
 * Encrypts and encodes one message with `messageKey`. With `wrap`, returns the full pre-key
 * message; the inner message is written in place, so the result is built in one buffer.
 */
export function sealMessage(
  messageKey: Uint8Array,
  ratchetKey: Uint8Array,
  chainIndex: number,
  plaintext: Uint8Array,
  wrap: PreKeyWrapping | null,
): Uint8Array {
  hkdfSha256Into(KEYS, messageKey, NO_SALT, KEYS_INFO);
  try {
    const ciphertext = aes256CbcEncrypt(AES_KEY, AES_IV, plaintext);
    const innerLength = messageLength(chainIndex, ciphertext.length);
    let out: Uint8Array;
    let start = 0;
    if (wrap === null) {
      out = new Uint8Array(innerLength);
    } else {
      out = new Uint8Array(preKeyMessageLength(innerLength));
      start = writePreKeyHeader(out, wrap.oneTimeKey, wrap.baseKey, wrap.identityKey, innerLength);
    }
    const macAt = writeMessageBody(out, start, ratchetKey, chainIndex, ciphertext);
    const mac = hmacSha256(MAC_KEY, out.subarray(start, macAt));
    // Byte by byte: a view of the 32-byte MAC would make V8 move it off its heap (root-key.ts).
    for (let i = 0; i < MESSAGE_MAC_LENGTH; i++) out[macAt + i] = mac[i]!;
    return out;
  } finally {
    wipe(KEYS);
  }
}

/** Checks the message's MAC, then decrypts its payload. Changes no state. */
export function openMessage(messageKey: Uint8Array, message: DecodedMessage): Uint8Array {
  hkdfSha256Into(KEYS, messageKey, NO_SALT, KEYS_INFO);
  try {
    const mac = hmacSha256(MAC_KEY, message.macInput);
    // Compared in place (no view of the 32-byte MAC, see sealMessage), in constant time.
    if (
      message.mac.length !== MESSAGE_MAC_LENGTH ||
      !constantTimeEqualAt(message.mac, mac, 0, MESSAGE_MAC_LENGTH)
    ) {
      throw new OlmError("BAD_MESSAGE_MAC", "Olm message MAC does not match");
    }
    try {
      return aes256CbcDecrypt(AES_KEY, AES_IV, message.ciphertext);
    } catch (e) {
      if (e instanceof CryptoPrimitiveError)
        throw new OlmError("DECRYPTION_FAILED", "Olm payload did not decrypt");
      throw e;
    }
  } finally {
    wipe(KEYS);
  }
}
