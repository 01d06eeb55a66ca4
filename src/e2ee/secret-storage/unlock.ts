/**
 * Opening secret storage: find the key description, turn a recovery key or passphrase into a key
 * that passed the description's check, then read secrets with it. Each failure has its own code:
 * `KEY_MISSING`, `WRONG_KEY`, `NO_PASSPHRASE`, `SECRET_MISSING`, `SECRET_NOT_ENCRYPTED_FOR_KEY`,
 * `BAD_MAC` (the secret is corrupt), `BAD_ENCRYPTED_SECRET`; recovery-key typos are
 * `RecoveryKeyError`s (`BAD_PARITY`, …) before any key is tried.
 */
import { wipe } from "../../crypto/primitives/index.ts";
import { decodeRecoveryKey } from "../../crypto/recovery-key/index.ts";
import {
  checkKey,
  decryptSecret,
  deriveKeyFromPassphrase,
  passphraseWeakness,
  SECRET_STORAGE_KEY_LENGTH,
  SecretStorageError,
} from "../../crypto/secret-storage/index.ts";
import {
  assertPassphraseUsable,
  parseDefaultKey,
  parseKeyDescription,
  parseSecretContent,
  type SecretStorageKeyDescription,
  type SecretStorageKeyHandle,
} from "./account-data.ts";
import { DEFAULT_KEY_TYPE, keyType } from "./names.ts";

/** Global account data by type, as the client last saw it (contents as received, unvalidated). */
export type AccountDataView = ReadonlyMap<string, unknown>;

/** A secret storage key that passed its description's check (or had none to pass). */
export class UnlockedSecretStorageKey implements SecretStorageKeyHandle {
  readonly keyId: string;
  readonly key: Uint8Array;
  /** "unverifiable" when the description had no check: the first secret's MAC is the real test. */
  readonly check: "verified" | "unverifiable";
  /**
   * True when the key's description has passphrase parameters below the floors (a key made by
   * another client, which its check proved): it reads secrets, but `buildSecretContent` refuses to
   * write under it (`WEAK_PASSPHRASE_PARAMETERS`).
   */
  readonly weakPassphrase: boolean;

  constructor(
    keyId: string,
    key: Uint8Array,
    check: "verified" | "unverifiable",
    weakPassphrase: boolean = false,
  ) {
    this.keyId = keyId;
    this.key = key;
    this.check = check;
    this.weakPassphrase = weakPassphrase;
  }

  /** Overwrites the key bytes; the handle is unusable afterwards. */
  wipe(): void {
    wipe(this.key);
  }

  toJSON(): Record<string, string> {
    return { keyId: this.keyId };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `UnlockedSecretStorageKey(${this.keyId})`;
  }
}

/** The default key's ID. `KEY_MISSING` when none is set, `BAD_KEY_DESCRIPTION` when malformed. */
export function defaultKeyId(accountData: AccountDataView): string {
  const content = accountData.get(DEFAULT_KEY_TYPE);
  if (content === undefined || content === null) {
    throw new SecretStorageError("KEY_MISSING", "no default secret storage key is set");
  }
  return parseDefaultKey(content);
}

/** The description of `keyId` (default: the default key). `KEY_MISSING` when absent. */
export function keyDescription(accountData: AccountDataView, keyId?: string): SecretStorageKeyDescription {
  const id = keyId ?? defaultKeyId(accountData);
  const content = accountData.get(keyType(id));
  if (content === undefined || content === null) {
    throw new SecretStorageError("KEY_MISSING", `no description for secret storage key ${id}`);
  }
  return parseKeyDescription(id, content);
}

/**
 * Checks raw key bytes against a description: `WRONG_KEY` when they are not its key,
 * `WEAK_PASSPHRASE_PARAMETERS` for weak passphrase parameters without a check to prove them.
 */
export function unlockWithKey(
  description: SecretStorageKeyDescription,
  key: Uint8Array,
): UnlockedSecretStorageKey {
  if (!(key instanceof Uint8Array) || key.length !== SECRET_STORAGE_KEY_LENGTH) {
    throw new SecretStorageError("BAD_ARGUMENT", "a secret storage key is 32 bytes");
  }
  assertPassphraseUsable(description);
  const check = checkKey(key, description.check ?? {});
  const weak =
    description.passphrase !== undefined && passphraseWeakness(description.passphrase) !== undefined;
  return new UnlockedSecretStorageKey(description.keyId, key.slice(), check, weak);
}

/** A typed or pasted recovery key: `RecoveryKeyError` for typos, then `WRONG_KEY`. */
export function unlockWithRecoveryKey(
  description: SecretStorageKeyDescription,
  recoveryKey: string,
): UnlockedSecretStorageKey {
  const key = decodeRecoveryKey(recoveryKey);
  try {
    return unlockWithKey(description, key);
  } finally {
    wipe(key);
  }
}

/**
 * A passphrase (one-shot PBKDF2; for progress derive with `PassphraseKeyDerivation` and call
 * `unlockWithKey`). `NO_PASSPHRASE` when the key was not made from one,
 * `WEAK_PASSPHRASE_PARAMETERS` (before deriving) for weak parameters without a key check, then
 * `WRONG_KEY`.
 */
export function unlockWithPassphrase(
  description: SecretStorageKeyDescription,
  passphrase: string,
): UnlockedSecretStorageKey {
  if (description.passphrase === undefined) {
    throw new SecretStorageError("NO_PASSPHRASE", "this key was made from a recovery key, not a passphrase");
  }
  assertPassphraseUsable(description); // before the derivation, not after
  const key = deriveKeyFromPassphrase(passphrase, description.passphrase);
  try {
    return unlockWithKey(description, key);
  } finally {
    wipe(key);
  }
}

/** The stored value of secret `name`, decrypted with `key`. */
export function readSecret(accountData: AccountDataView, name: string, key: SecretStorageKeyHandle): string {
  const content = accountData.get(name);
  if (content === undefined || content === null) {
    throw new SecretStorageError("SECRET_MISSING", `${name} is not in secret storage`);
  }
  const parsed = parseSecretContent(content);
  const malformed = parsed.malformed.get(key.keyId);
  if (malformed !== undefined) throw malformed;
  const record = parsed.encrypted.get(key.keyId);
  if (record === undefined) {
    throw new SecretStorageError(
      "SECRET_NOT_ENCRYPTED_FOR_KEY",
      `${name} is not stored under key ${key.keyId}`,
    );
  }
  return decryptSecret(key.key, name, record);
}
