/**
 * Reading and writing secret storage's account data, validated at the edge: the default key
 * pointer, key descriptions (`m.secret_storage.key.<id>`) and encrypted secrets
 * (`{ encrypted: { <key id>: { iv, ciphertext, mac } } }`). Pure functions; the client fetches
 * and uploads.
 */
import { randomBytes } from "../../crypto/primitives/index.ts";
import { encodeRecoveryKey } from "../../crypto/recovery-key/index.ts";
import {
  AES_HMAC_SHA2_ALGORITHM,
  type AesHmacSha2EncryptedSecret,
  computeKeyCheck,
  encryptSecret,
  type KeyCheck,
  type PassphraseInfo,
  parsePassphraseInfo,
  passphraseWeakness,
  randomAlphanumeric,
  SECRET_STORAGE_KEY_LENGTH,
  SecretStorageError,
  validateEncryptedSecret,
  validateKeyCheck,
} from "../../crypto/secret-storage/index.ts";
import { isRecord } from "../../wire/json.ts";
import { isKeyId, isSecretName, KEY_TYPE_PREFIX } from "./names.ts";

/** Most keys one secret may be encrypted for; more is refused as hostile. */
export const MAX_KEYS_PER_SECRET = 32;
/** Longest display name of a key we keep. */
export const MAX_KEY_NAME_LENGTH = 1000;

/** A parsed `m.secret_storage.key.<id>` description. */
export interface SecretStorageKeyDescription {
  readonly keyId: string;
  readonly algorithm: typeof AES_HMAC_SHA2_ALGORITHM;
  readonly name?: string;
  readonly passphrase?: PassphraseInfo;
  /** Absent when the description carries no check (then any key is assumed right). */
  readonly check?: KeyCheck;
}

/** The key ID in an `m.secret_storage.key.<id>` type, or undefined for other types. */
export function keyIdOfType(type: string): string | undefined {
  if (!type.startsWith(KEY_TYPE_PREFIX)) return undefined;
  const id = type.slice(KEY_TYPE_PREFIX.length);
  return isKeyId(id) ? id : undefined;
}

/** `m.secret_storage.default_key` content → the key ID. `BAD_KEY_DESCRIPTION` when malformed. */
export function parseDefaultKey(content: unknown): string {
  if (!isRecord(content) || !isKeyId(content.key)) {
    throw new SecretStorageError("BAD_KEY_DESCRIPTION", "the default key record has no valid key ID");
  }
  return content.key;
}

export function buildDefaultKey(keyId: string): { key: string } {
  if (!isKeyId(keyId)) throw new SecretStorageError("BAD_ARGUMENT", "invalid key ID");
  return { key: keyId };
}

/**
 * `WEAK_PASSPHRASE_PARAMETERS` when `description` has no key check and passphrase parameters
 * below the floors: a key derived with them could not be told from the real one, and the server
 * chose them (policy: `passphraseWeakness` in src/crypto/secret-storage/passphrase.ts). Called
 * before any derivation; a description with a check passes, whatever its parameters.
 */
export function assertPassphraseUsable(description: {
  readonly passphrase?: PassphraseInfo;
  readonly check?: KeyCheck;
}): void {
  if (description.check !== undefined || description.passphrase === undefined) return;
  const weakness = passphraseWeakness(description.passphrase);
  if (weakness !== undefined) {
    throw new SecretStorageError(
      "WEAK_PASSPHRASE_PARAMETERS",
      `a key without a key check whose passphrase has ${weakness}`,
    );
  }
}

/**
 * Validates a key description. `UNSUPPORTED_ALGORITHM` for algorithms other than aes-hmac-sha2,
 * `BAD_KEY_DESCRIPTION` for anything malformed (check fields of the wrong length included),
 * `WEAK_PASSPHRASE_PARAMETERS` for weak passphrase parameters without a key check.
 */
export function parseKeyDescription(keyId: string, content: unknown): SecretStorageKeyDescription {
  if (!isKeyId(keyId)) throw new SecretStorageError("BAD_ARGUMENT", "invalid key ID");
  if (!isRecord(content))
    throw new SecretStorageError("BAD_KEY_DESCRIPTION", "a key description is an object");
  if (content.algorithm !== AES_HMAC_SHA2_ALGORITHM) {
    throw new SecretStorageError(
      typeof content.algorithm === "string" ? "UNSUPPORTED_ALGORITHM" : "BAD_KEY_DESCRIPTION",
      "the key's algorithm is not m.secret_storage.v1.aes-hmac-sha2",
    );
  }
  validateKeyCheck(content);
  const name =
    typeof content.name === "string" && content.name.length <= MAX_KEY_NAME_LENGTH ? content.name : undefined;
  const description: SecretStorageKeyDescription = {
    keyId,
    algorithm: AES_HMAC_SHA2_ALGORITHM,
    ...(name === undefined ? {} : { name }),
    ...(content.passphrase === undefined || content.passphrase === null
      ? {}
      : { passphrase: parsePassphraseInfo(content.passphrase) }),
    ...(content.iv === undefined ? {} : { check: { iv: content.iv as string, mac: content.mac as string } }),
  };
  assertPassphraseUsable(description);
  return description;
}

/** A new secret storage key: its ID, the 32 key bytes and the description to upload. */
export interface NewSecretStorageKey {
  readonly keyId: string;
  readonly key: Uint8Array;
  /** Content for `m.secret_storage.key.<keyId>`. */
  readonly content: Record<string, unknown>;
  /** The key as the user sees it (shown once, never stored). */
  readonly recoveryKey: string;
}

/**
 * A new key: random, or `key` derived by the caller from a passphrase with `passphrase`'s
 * parameters (derivation is slow, so the caller runs it, with progress if it likes).
 */
export function newSecretStorageKey(
  options: { readonly key?: Uint8Array; readonly passphrase?: PassphraseInfo; readonly name?: string } = {},
): NewSecretStorageKey {
  if ((options.key === undefined) !== (options.passphrase === undefined)) {
    throw new SecretStorageError("BAD_ARGUMENT", "a derived key comes with its passphrase parameters");
  }
  const key = options.key?.slice() ?? randomBytes(SECRET_STORAGE_KEY_LENGTH);
  if (key.length !== SECRET_STORAGE_KEY_LENGTH) {
    throw new SecretStorageError("BAD_ARGUMENT", "a secret storage key is 32 bytes");
  }
  const content = buildKeyDescription(key, {
    ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
    ...(options.name === undefined ? {} : { name: options.name }),
  });
  return { keyId: newKeyId(), key, content, recoveryKey: encodeRecoveryKey(key) };
}

/**
 * The account-data content describing `key` (with a fresh key check). For a passphrase key,
 * pass the `PassphraseInfo` the key was derived with.
 */
export function buildKeyDescription(
  key: Uint8Array,
  options: { readonly passphrase?: PassphraseInfo; readonly name?: string } = {},
): Record<string, unknown> {
  const weakness = options.passphrase === undefined ? undefined : passphraseWeakness(options.passphrase);
  if (weakness !== undefined) {
    throw new SecretStorageError("WEAK_PASSPHRASE_PARAMETERS", `a new key's passphrase has ${weakness}`);
  }
  const check = computeKeyCheck(key);
  return {
    algorithm: AES_HMAC_SHA2_ALGORITHM,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.passphrase === undefined ? {} : { passphrase: { ...options.passphrase } }),
    iv: check.iv,
    mac: check.mac,
  };
}

/** A fresh random key ID (32 alphanumeric characters, as other clients make them). */
export function newKeyId(): string {
  return randomAlphanumeric(32);
}

/** One stored secret's `encrypted` map, each entry validated on its own. */
export interface ParsedSecret {
  /** Entries that are well-formed aes-hmac-sha2 records. */
  readonly encrypted: ReadonlyMap<string, AesHmacSha2EncryptedSecret>;
  /** Entries that are present but malformed, with why (so a status can name them). */
  readonly malformed: ReadonlyMap<string, SecretStorageError>;
}

/**
 * Validates a secret's account-data content. One bad entry does not hide the others (another
 * key's record may still decrypt). `BAD_ENCRYPTED_SECRET` when there is no `encrypted` object.
 */
export function parseSecretContent(content: unknown): ParsedSecret {
  if (!isRecord(content) || !isRecord(content.encrypted)) {
    throw new SecretStorageError("BAD_ENCRYPTED_SECRET", "a stored secret has an `encrypted` object");
  }
  const entries = Object.entries(content.encrypted);
  if (entries.length > MAX_KEYS_PER_SECRET) {
    throw new SecretStorageError(
      "BAD_ENCRYPTED_SECRET",
      `encrypted for more than ${MAX_KEYS_PER_SECRET} keys`,
    );
  }
  const encrypted = new Map<string, AesHmacSha2EncryptedSecret>();
  const malformed = new Map<string, SecretStorageError>();
  for (const [keyId, record] of entries) {
    if (!isKeyId(keyId)) continue;
    try {
      encrypted.set(keyId, validateEncryptedSecret(record));
    } catch (e) {
      if (!(e instanceof SecretStorageError)) throw e;
      malformed.set(keyId, e);
    }
  }
  return { encrypted, malformed };
}

/** A key to encrypt a secret for: its ID and 32 bytes. */
export interface SecretStorageKeyHandle {
  readonly keyId: string;
  readonly key: Uint8Array;
  /** True for a key whose passphrase parameters are weak: it opens, but nothing new is written under it. */
  readonly weakPassphrase?: boolean;
}

/**
 * The account-data content storing `secret` under `name`, encrypted for every key in `keys`.
 * `existing` content's entries for other keys are kept (so adding a key does not drop the rest);
 * entries for the given keys are replaced. `WEAK_PASSPHRASE_PARAMETERS` when one of `keys` has weak
 * passphrase parameters (the secret would be only as safe as a cheap guess at the passphrase).
 */
export function buildSecretContent(
  name: string,
  secret: string,
  keys: readonly SecretStorageKeyHandle[],
  existing?: unknown,
): { encrypted: Record<string, AesHmacSha2EncryptedSecret> } {
  if (!isSecretName(name)) throw new SecretStorageError("BAD_ARGUMENT", "invalid secret name");
  if (keys.length === 0) throw new SecretStorageError("BAD_ARGUMENT", "at least one key");
  const encrypted: Record<string, AesHmacSha2EncryptedSecret> = {};
  if (existing !== undefined) {
    for (const [keyId, record] of parseSecretContent(existing).encrypted) encrypted[keyId] = record;
  }
  for (const handle of keys) {
    if (handle.weakPassphrase === true) {
      throw new SecretStorageError(
        "WEAK_PASSPHRASE_PARAMETERS",
        `key ${handle.keyId} was made from a passphrase with weak parameters; move the secrets to a new key`,
      );
    }
  }
  for (const { keyId, key } of keys) {
    if (!isKeyId(keyId)) throw new SecretStorageError("BAD_ARGUMENT", "invalid key ID");
    encrypted[keyId] = encryptSecret(key, name, secret);
  }
  if (Object.keys(encrypted).length > MAX_KEYS_PER_SECRET) {
    throw new SecretStorageError("BAD_ARGUMENT", `at most ${MAX_KEYS_PER_SECRET} keys per secret`);
  }
  return { encrypted };
}
