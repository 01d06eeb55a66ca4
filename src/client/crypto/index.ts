export {
  attachmentOf,
  downloadAttachmentBytes,
  downloadAttachmentStream,
  type EncryptedUpload,
  encryptedFile,
  encryptUpload,
  type MediaAttachment,
} from "./attachments.ts";
export {
  type BackupStatus,
  KEY_BACKUP_ACCOUNT_DATA,
  KeyBackup,
  type KeyBackupHost,
  type NewBackupVersion,
  type RestoreBackupOptions,
  type RestoreBackupResult,
} from "./backup.ts";
export {
  ClientCrypto,
  type ClientCryptoHost,
  type ClientCryptoOpenOptions,
  type KeyImportResult,
  MAX_WAITING_EVENTS,
  type ProgressCallback,
  type RoomTrustRequirements,
} from "./client-crypto.ts";
export { sendOutgoingRequest } from "./dispatch.ts";
export { ClientCryptoError, type ClientCryptoErrorCode } from "./errors.ts";
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
export {
  type CreatedSecretStorageKey,
  type CreateSecretStorageKeyOptions,
  SecretStorage,
  type SecretStorageUnlock,
} from "./secret-storage.ts";
