export {
  attachmentOf,
  downloadAttachmentBytes,
  downloadAttachmentStream,
  downloadThumbnailBytes,
  type EncryptedUpload,
  encryptedFile,
  encryptUpload,
  type MediaAttachment,
  thumbnailOf,
} from "./attachments.ts";
export {
  type BackupStatus,
  backupEnabledInAccountData,
  KEY_BACKUP_ACCOUNT_DATA,
  KeyBackup,
  type KeyBackupHost,
  LEGACY_BACKUP_DISABLED_ACCOUNT_DATA,
  type NewBackupVersion,
  type RestoreBackupOptions,
  type RestoreBackupResult,
} from "./backup.ts";
export { ClientCrypto } from "./client-crypto.ts";
export type {
  ClientCryptoHost,
  ClientCryptoOpenOptions,
  KeyImportResult,
  ProgressCallback,
  RoomTrustRequirements,
} from "./client-crypto-types.ts";
export {
  DEFAULT_DEHYDRATION_PERIOD_MS,
  DEHYDRATED_DEVICE_DISPLAY_NAME,
  DEHYDRATION_SECRET_NAME,
  MIN_DEHYDRATION_PERIOD_MS,
} from "./constants.ts";
export { DehydratedDevices } from "./dehydration.ts";
export type { DehydrationStartOptions, RehydrationResult } from "./dehydration-types.ts";
export { sendOutgoingRequest } from "./dispatch.ts";
export { ClientCryptoError, type ClientCryptoErrorCode } from "./errors.ts";
export {
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_LEASE_LINGER_MS,
  DEFAULT_LEASE_TIMEOUT_MS,
  LeaseKeeper,
  type LeaseOptions,
  MAX_LEASE_HOLD_MS,
} from "./lease.ts";
export { refusingSyncProcessor } from "./not-started.ts";
export {
  type CryptoStoreFactory,
  type CryptoStoreOption,
  type EncryptionOptions,
  type OpenedStore,
  openCryptoStore,
  openStoredIdentity,
  resolveEncryptionOptions,
} from "./options.ts";
export { MAX_OUTGOING_PASSES, OutgoingRequestLoop, Serial } from "./outgoing.ts";
export { Recovery } from "./recovery.ts";
export { RecoveryError, type RecoveryErrorCode } from "./recovery-error.ts";
export type {
  EnableRecoveryOptions,
  NewRecoveryKeyOptions,
  RecoverOptions,
  RecoverResult,
  RecoveryBackup,
  RecoveryHost,
  RecoveryKeyResult,
} from "./recovery-types.ts";
export { SecretStorage } from "./secret-storage.ts";
export type {
  CreatedSecretStorageKey,
  CreateSecretStorageKeyOptions,
  SecretStorageUnlock,
} from "./secret-storage-types.ts";
