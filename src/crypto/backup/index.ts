export { BackupError, type BackupErrorCode } from "./errors.ts";
export {
  type BackedUpRoomKey,
  type BackupVersion,
  backupKeyMatches,
  buildBackupAuthData,
  type DecryptedKeyBackupData,
  decryptKeyBackupData,
  encryptKeyBackupData,
  type KeyBackupData,
  keyBackupDataFromPlaintext,
  keyBackupSessionData,
  MAX_BACKUP_CIPHERTEXT_LENGTH,
  MEGOLM_BACKUP_V1_ALGORITHM,
  parseBackupVersion,
} from "./megolm-backup-v1.ts";
