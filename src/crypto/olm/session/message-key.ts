/**
 * What one message key does (spec: "Sending messages", "Receiving messages"):
 * AES_KEY(32) || HMAC_KEY(32) || AES_IV(16) = HKDF(salt = none, ikm = M(i,j), info = "OLM_KEYS", 80);
 * the payload is AES-256-CBC (PKCS#7), and the message ends with HMAC-SHA-256 truncated to 8 bytes.
 */
import {
  aes256CbcDecrypt,
  aes256CbcEncrypt,
  CryptoPrimitiveError,
  constantTimeEqual,
  hkdfSha256,
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
  const keys = hkdfSha256(messageKey, NO_SALT, KEYS_INFO, 80);
  try {
    const ciphertext = aes256CbcEncrypt(keys.subarray(0, 32), keys.subarray(64, 80), plaintext);
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
    const mac = hmacSha256(keys.subarray(32, 64), out.subarray(start, macAt));
    out.set(mac.subarray(0, MESSAGE_MAC_LENGTH), macAt);
    return out;
  } finally {
    wipe(keys);
  }
}

/** Checks the message's MAC, then decrypts its payload. Changes no state. */
export function openMessage(messageKey: Uint8Array, message: DecodedMessage): Uint8Array {
  const keys = hkdfSha256(messageKey, NO_SALT, KEYS_INFO, 80);
  try {
    const mac = hmacSha256(keys.subarray(32, 64), message.macInput);
    if (!constantTimeEqual(mac.subarray(0, MESSAGE_MAC_LENGTH), message.mac)) {
      throw new OlmError("BAD_MESSAGE_MAC", "Olm message MAC does not match");
    }
    try {
      return aes256CbcDecrypt(keys.subarray(0, 32), keys.subarray(64, 80), message.ciphertext);
    } catch (e) {
      if (e instanceof CryptoPrimitiveError)
        throw new OlmError("DECRYPTION_FAILED", "Olm payload did not decrypt");
      throw e;
    }
  } finally {
    wipe(keys);
  }
}
