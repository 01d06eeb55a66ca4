import {
  aes256Ctr,
  aes256CtrAsync,
  constantTimeEqual,
  encodeBase64,
  encodeBase64Url,
  randomBytes,
  sha256,
  sha256Async,
  wipe,
} from "../primitives/symmetric.ts";
import { AttachmentError } from "./errors.ts";
import { decodeFileInfo, type EncryptedFileInfo } from "./file-info.ts";

/** The result of encrypting an attachment: upload `ciphertext`, then send `info` plus the upload's `url`. */
export interface EncryptedAttachment {
  ciphertext: Uint8Array;
  info: EncryptedFileInfo;
}

/**
 * A fresh initial counter block: 8 random bytes, then a 64-bit block counter starting at zero, so that
 * the counter can never run into the random half (the reason v2 exists).
 */
export function newAttachmentIv(): Uint8Array {
  const iv = new Uint8Array(16);
  iv.set(randomBytes(8), 0);
  return iv;
}

/**
 * How many bytes an IV can encrypt before its low 64 bits (v2's counter) wrap. matrix-encrypt-attachment
 * (Element Web) wraps there, other clients carry into the random half: past it the same ciphertext
 * decrypts differently from client to client, so decryption refuses a file that goes past it.
 */
export function counterHalfBytes(iv: Uint8Array): number {
  let counter = 0n;
  for (let i = 8; i < 16; i++) counter = (counter << 8n) | BigInt(iv[i] ?? 0);
  const blocks = (1n << 64n) - counter;
  return blocks > BigInt(Math.floor(Number.MAX_SAFE_INTEGER / 16))
    ? Number.POSITIVE_INFINITY
    : Number(blocks) * 16;
}

/** Throws `BAD_FILE_INFO` when `byteLength` bytes would run the counter half of `iv` past its wrap. */
export function assertCounterHalfFits(iv: Uint8Array, byteLength: number): void {
  if (byteLength > counterHalfBytes(iv)) {
    throw new AttachmentError("BAD_FILE_INFO", "the IV's 64-bit counter would wrap within the file");
  }
}

/** Builds the v2 file description for a key, IV and ciphertext hash. */
export function fileInfoFor(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertextSha256: Uint8Array,
): EncryptedFileInfo {
  return {
    v: "v2",
    key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: encodeBase64Url(key), ext: true },
    iv: encodeBase64(iv),
    hashes: { sha256: encodeBase64(ciphertextSha256) },
  };
}

/** Encrypts a whole attachment in memory (AES-256-CTR with a fresh key, SHA-256 of the ciphertext). */
export function encryptAttachment(plaintext: Uint8Array): EncryptedAttachment {
  const key = randomBytes(32);
  const iv = newAttachmentIv();
  const ciphertext = aes256Ctr(key, iv, plaintext);
  return { ciphertext, info: fileInfoFor(key, iv, sha256(ciphertext)) };
}

/**
 * Decrypts a whole attachment after checking its SHA-256 against the sender's description, so a
 * tampered download is refused before any plaintext is produced. The decoded key is wiped before it
 * returns or throws.
 */
export function decryptAttachment(ciphertext: Uint8Array, info: unknown): Uint8Array {
  const decoded = decodeFileInfo(info);
  try {
    assertCounterHalfFits(decoded.iv, ciphertext.length);
    if (!constantTimeEqual(sha256(ciphertext), decoded.sha256)) {
      throw new AttachmentError("HASH_MISMATCH", "attachment ciphertext does not match its SHA-256 hash");
    }
    return aes256Ctr(decoded.key, decoded.iv, ciphertext);
  } finally {
    wipe(decoded.key);
  }
}

/** `encryptAttachment` on Web Crypto in browsers (native AES and SHA-256, off the JavaScript path). */
export async function encryptAttachmentAsync(plaintext: Uint8Array): Promise<EncryptedAttachment> {
  const key = randomBytes(32);
  const iv = newAttachmentIv();
  const ciphertext = await aes256CtrAsync(key, iv, plaintext);
  return { ciphertext, info: fileInfoFor(key, iv, await sha256Async(ciphertext)) };
}

/** `decryptAttachment` on Web Crypto in browsers; the hash is checked first, the same way. */
export async function decryptAttachmentAsync(ciphertext: Uint8Array, info: unknown): Promise<Uint8Array> {
  const decoded = decodeFileInfo(info);
  try {
    assertCounterHalfFits(decoded.iv, ciphertext.length);
    if (!constantTimeEqual(await sha256Async(ciphertext), decoded.sha256)) {
      throw new AttachmentError("HASH_MISMATCH", "attachment ciphertext does not match its SHA-256 hash");
    }
    return await aes256CtrAsync(decoded.key, decoded.iv, ciphertext);
  } finally {
    // The decryption is over (Web Crypto imported its own copy of the key).
    wipe(decoded.key);
  }
}
