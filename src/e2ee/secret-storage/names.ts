/** Account-data types and secret names of secret storage (spec "Secrets" and "Storage"). */
import {
  decodeBase64,
  ed25519PublicKey,
  encodeBase64,
  wipe,
  x25519PublicKey,
} from "../../crypto/primitives/index.ts";
import { SecretStorageError } from "../../crypto/secret-storage/errors.ts";

export const DEFAULT_KEY_TYPE = "m.secret_storage.default_key";
export const KEY_TYPE_PREFIX = "m.secret_storage.key.";

export const CROSS_SIGNING_MASTER_SECRET = "m.cross_signing.master";
export const CROSS_SIGNING_SELF_SIGNING_SECRET = "m.cross_signing.self_signing";
export const CROSS_SIGNING_USER_SIGNING_SECRET = "m.cross_signing.user_signing";
export const BACKUP_SECRET = "m.megolm_backup.v1";
/** The dehydrated-device key, under the unstable name the rust-sdk and matrix-js-sdk use (MSC3814). */
export const DEHYDRATED_DEVICE_SECRET = "org.matrix.msc3814";

/** The secrets whose values are 32-byte keys in unpadded base64. */
export const KEY_SECRETS: readonly string[] = [
  CROSS_SIGNING_MASTER_SECRET,
  CROSS_SIGNING_SELF_SIGNING_SECRET,
  CROSS_SIGNING_USER_SIGNING_SECRET,
  BACKUP_SECRET,
  DEHYDRATED_DEVICE_SECRET,
];

/** Longest key ID we accept in a type name (ours are 32 characters). */
export const MAX_KEY_ID_LENGTH = 255;
/** Longest secret name we accept (names are event-type-like strings). */
export const MAX_SECRET_NAME_LENGTH = 255;

export function keyType(keyId: string): string {
  return `${KEY_TYPE_PREFIX}${keyId}`;
}

export function isKeyId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_KEY_ID_LENGTH;
}

export function isSecretName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_SECRET_NAME_LENGTH;
}

/**
 * The 32-byte key a secret holds. Keys are stored as unpadded base64 (padded is accepted too).
 * Throws `BAD_SECRET` for anything else: a value that decrypted fine but is not a key.
 */
export function decodeKeySecret(name: string, value: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(value);
  } catch {
    throw new SecretStorageError("BAD_SECRET", `${name} is not base64`);
  }
  if (bytes.length !== 32) throw new SecretStorageError("BAD_SECRET", `${name} is not a 32-byte key`);
  return bytes;
}

export function encodeKeySecret(key: Uint8Array): string {
  return encodeBase64(key);
}

/**
 * The public key a key secret stands for (unpadded base64): Ed25519 for the cross-signing keys,
 * Curve25519 for the backup key; undefined for other secrets. Lets a caller tell a current secret
 * from a stale one (left behind by an identity or backup reset elsewhere). Throws `BAD_SECRET` when
 * the value is not a 32-byte key.
 */
export function publicKeyOfSecret(name: string, value: string): string | undefined {
  const ed25519 = [
    CROSS_SIGNING_MASTER_SECRET,
    CROSS_SIGNING_SELF_SIGNING_SECRET,
    CROSS_SIGNING_USER_SIGNING_SECRET,
  ];
  if (!ed25519.includes(name) && name !== BACKUP_SECRET) return undefined;
  const key = decodeKeySecret(name, value);
  try {
    return encodeBase64(name === BACKUP_SECRET ? x25519PublicKey(key) : ed25519PublicKey(key));
  } finally {
    wipe(key);
  }
}
