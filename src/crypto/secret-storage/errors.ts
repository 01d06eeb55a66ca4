/**
 * Every failure of secret storage is a `SecretStorageError` whose `code` says exactly what is
 * wrong, so that a user is told "wrong recovery key" only when the key is wrong. Messages never
 * carry keys, passphrases or secrets.
 */
export type SecretStorageErrorCode =
  /** The key check (MAC of 32 zero bytes) failed: the recovery key or passphrase is not this key's. */
  | "WRONG_KEY"
  /** A secret's MAC failed under a key that passed its check: the stored secret is corrupt. */
  | "BAD_MAC"
  /** A key description (`m.secret_storage.key.*`) is malformed: IV/MAC length, passphrase record. */
  | "BAD_KEY_DESCRIPTION"
  /**
   * A key's passphrase parameters are below the floors (`MIN_PASSPHRASE_ITERATIONS`,
   * `MIN_PASSPHRASE_SALT_LENGTH`): refused for a key without a key check, and for writing new
   * secrets under any key (see `passphraseWeakness`).
   */
  | "WEAK_PASSPHRASE_PARAMETERS"
  /** A key description names an algorithm we do not implement. */
  | "UNSUPPORTED_ALGORITHM"
  /** An encrypted secret record (`iv`, `ciphertext`, `mac`) is missing a field or malformed. */
  | "BAD_ENCRYPTED_SECRET"
  /** A secret decrypted to bytes that are not UTF-8, or not the key encoding its name requires. */
  | "BAD_SECRET"
  /** The key was made from a recovery key only: there is no passphrase to derive it from. */
  | "NO_PASSPHRASE"
  /** No key description for the key ID asked for (or no default key set). */
  | "KEY_MISSING"
  /** The secret is not in account data at all. */
  | "SECRET_MISSING"
  /** The secret is in account data, but not encrypted for the key asked for. */
  | "SECRET_NOT_ENCRYPTED_FOR_KEY"
  /** A caller-supplied argument has the wrong type or size. */
  | "BAD_ARGUMENT";

export class SecretStorageError extends Error {
  override readonly name = "SecretStorageError";
  readonly code: SecretStorageErrorCode;

  constructor(code: SecretStorageErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
