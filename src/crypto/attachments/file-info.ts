import { decodeBase64, decodeBase64Url } from "../primitives/symmetric.ts";
import { AttachmentError } from "./errors.ts";

/** The JSON Web Key of an attachment, as carried in an `EncryptedFile` (spec: "JSON Web Key"). */
export interface AttachmentJwk {
  kty: "oct";
  key_ops: string[];
  alg: "A256CTR";
  /** Unpadded URL-safe base64 of the 32-byte AES key. */
  k: string;
  ext: true;
}

/** The `file` / `thumbnail_file` object of an encrypted media event, without its `url`. */
export interface EncryptedFileInfo {
  v: "v2";
  key: AttachmentJwk;
  /** Unpadded base64 of the 16-byte initial counter block. */
  iv: string;
  hashes: { sha256: string };
}

/** An `EncryptedFile` as sent in `m.room.message` content (`file`, `info.thumbnail_file`). */
export interface EncryptedFile extends EncryptedFileInfo {
  url: string;
}

/** The checked, decoded form of an `EncryptedFileInfo`. */
export interface DecodedFileInfo {
  key: Uint8Array;
  iv: Uint8Array;
  sha256: Uint8Array;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(message: string): never {
  throw new AttachmentError("BAD_FILE_INFO", message);
}

/** Decodes a byte field, turning any decoding failure into a BAD_FILE_INFO error. */
function bytes(decode: (s: string) => Uint8Array, value: unknown, field: string, length: number): Uint8Array {
  if (typeof value !== "string") bad(`${field} must be a string`);
  let decoded: Uint8Array;
  try {
    decoded = decode(value);
  } catch {
    bad(`${field} is not valid base64`);
  }
  if (decoded.length !== length) bad(`${field} must be ${length} bytes, got ${decoded.length}`);
  return decoded;
}

/**
 * Validates an untrusted `EncryptedFile`-like object and decodes its key material. Only version 2 is
 * accepted: v1 files carried a counter that could wrap into the IV's random half, which is why the spec
 * retired them.
 */
export function decodeFileInfo(info: unknown): DecodedFileInfo {
  if (!isRecord(info)) bad("file info must be an object");
  if (info.v !== "v2") bad(`unsupported encrypted file version ${JSON.stringify(info.v)}`);
  const jwk = info.key;
  if (!isRecord(jwk)) bad("key must be a JSON Web Key object");
  if (jwk.kty !== "oct") bad("key.kty must be 'oct'");
  if (jwk.alg !== "A256CTR") bad("key.alg must be 'A256CTR'");
  if (!Array.isArray(jwk.key_ops) || !jwk.key_ops.includes("decrypt"))
    bad("key.key_ops must include 'decrypt'");
  const hashes = info.hashes;
  if (!isRecord(hashes)) bad("hashes must be an object");
  return {
    key: bytes(decodeBase64Url, jwk.k, "key.k", 32),
    iv: bytes(decodeBase64, info.iv, "iv", 16),
    sha256: bytes(decodeBase64, hashes.sha256, "hashes.sha256", 32),
  };
}

/**
 * Whether an untrusted value is a well-formed v2 `EncryptedFile` (the checks of `decodeFileInfo`,
 * plus a string `url`). The decoded key material is wiped at once.
 */
export function isEncryptedFile(value: unknown): value is EncryptedFile {
  if (!isRecord(value) || typeof value.url !== "string") return false;
  try {
    const decoded = decodeFileInfo(value);
    decoded.key.fill(0);
    return true;
  } catch (e) {
    if (e instanceof AttachmentError) return false;
    throw e;
  }
}
