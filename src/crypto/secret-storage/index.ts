export {
  AES_HMAC_SHA2_ALGORITHM,
  type AesHmacSha2EncryptedSecret,
  checkKey,
  computeKeyCheck,
  decryptSecret,
  encryptSecret,
  type KeyCheck,
  MAX_SECRET_CIPHERTEXT_LENGTH,
  SECRET_STORAGE_KEY_LENGTH,
  validateEncryptedSecret,
  validateKeyCheck,
} from "./aes-hmac-sha2.ts";
export { SecretStorageError, type SecretStorageErrorCode } from "./errors.ts";
export {
  DEFAULT_PASSPHRASE_ITERATIONS,
  deriveKeyFromPassphrase,
  deriveKeyFromPassphraseWithProgress,
  MAX_PASSPHRASE_ITERATIONS,
  MAX_PASSPHRASE_SALT_LENGTH,
  newPassphraseInfo,
  PASSPHRASE_STEP_ITERATIONS,
  type PassphraseInfo,
  PassphraseKeyDerivation,
  PBKDF2_ALGORITHM,
  parsePassphraseInfo,
  randomAlphanumeric,
} from "./passphrase.ts";
