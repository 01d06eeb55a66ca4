export { BackupError, type BackupErrorCode } from "./errors.ts";
export {
  type BackedUpRoomKey,
  type BackupVersion,
  backupKeyMatches,
  buildBackupAuthData,
  decryptKeyBackupData,
  encryptKeyBackupData,
  type KeyBackupData,
  MAX_BACKUP_CIPHERTEXT_LENGTH,
  MEGOLM_BACKUP_V1_ALGORITHM,
  parseBackupVersion,
} from "./megolm-backup-v1.ts";
