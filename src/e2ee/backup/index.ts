export { KeyBackupApi, type RestoreOptions, type RestoreResult } from "./api.ts";
export { KeyBackupError, type KeyBackupErrorCode } from "./errors.ts";
export {
  BACKUP_KEY_SECRET,
  BACKUP_UPLOAD_BATCH_SIZE,
  type BackupStopReason,
  type KeyBackupStatus,
  MAX_BACKUP_LOOKUPS,
  MAX_DAMAGED_SESSIONS_PER_BACKUP_STEP,
  MAX_LOOKED_UP_SESSIONS,
  MAX_SKIPPED_DAMAGED_SESSIONS,
  PENDING_BACKUP_KEY_SECRET,
  type VersionCheck,
} from "./key-backup.ts";
export type { BackupCreateVersionRequest, BackupLookupRequest, BackupUploadRequest } from "./requests.ts";
export {
  type BackupRecordsDecryptor,
  MAX_RESTORE_SESSIONS,
  RESTORE_DECRYPT_CHUNK,
  type RestoreScope,
} from "./restore.ts";
export { type BackupTrust, type BackupTrustSource, MAX_BACKUP_SIGNATURES_CHECKED } from "./trust.ts";
