// What callers of the encryption API catch and read, re-exported so `keyroom` alone suffices.

export { RecoveryKeyError, type RecoveryKeyErrorCode } from "../crypto/recovery-key/index.ts";
export { SecretStorageError, type SecretStorageErrorCode } from "../crypto/secret-storage/index.ts";
export {
  CrossSigningError,
  type CrossSigningErrorCode,
  type CrossSigningStatus,
  DecryptionError,
  type DecryptionFailureCode,
  DehydrationError,
  type DehydrationErrorCode,
  type DeviceInfo,
  type DeviceTrust,
  E2eeError,
  type E2eeErrorCode,
  type HeldKeyRequest,
  type IdentityState,
  type RecoveryProblem,
  type RecoveryRepair,
  type RecoveryStatus,
  type SecretStorageProblem,
  type SecretStorageStatus,
  type SenderRequirement,
  type SenderTrust,
  type ShareWith,
  type UnknownDevice,
  UnknownDevicesError,
  UnlockedSecretStorageKey,
  type UserIdentityInfo,
  VerificationError,
  type VerificationErrorCode,
  type VerificationSnapshot,
  type VerifiedKeys,
} from "../e2ee/index.ts";
export { StoreLockedError, StoreMismatchError } from "../store/errors.ts";
export {
  type BackoffPolicy,
  backoffDelay,
  DEFAULT_BACKOFF,
  MAX_RETRY_AFTER_MS,
  withRetry,
} from "./backoff.ts";
export { MatrixClient } from "./client.ts";
export type { MatrixClientOptions } from "./client-options.ts";
export * from "./client-store/index.ts";
export { type Clock, systemClock } from "./clock.ts";
export { DeviceApi, type DeviceDeletionAuth, MAX_UIA_ROUNDS, type OwnDevice } from "./devices.ts";
export { checkHomeserver, type DiscoveredHomeserver, discoverHomeserver, serverNameOf } from "./discovery.ts";
export {
  attachmentOf,
  type BackupStatus,
  ClientCrypto,
  ClientCryptoError,
  type ClientCryptoErrorCode,
  type CreatedSecretStorageKey,
  type CreateSecretStorageKeyOptions,
  type CryptoStoreFactory,
  type CryptoStoreOption,
  DEFAULT_DEHYDRATION_PERIOD_MS,
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_LEASE_TIMEOUT_MS,
  DEHYDRATION_SECRET_NAME,
  DehydratedDevices,
  type DehydrationStartOptions,
  type EnableRecoveryOptions,
  type EncryptionOptions,
  KEY_BACKUP_ACCOUNT_DATA,
  KeyBackup,
  type KeyImportResult,
  type LeaseOptions,
  MAX_OUTGOING_PASSES,
  type MediaAttachment,
  type NewBackupVersion,
  type NewRecoveryKeyOptions,
  type ProgressCallback,
  type RecoverOptions,
  type RecoverResult,
  Recovery,
  RecoveryError,
  type RecoveryErrorCode,
  type RecoveryKeyResult,
  type RehydrationResult,
  type RestoreBackupOptions,
  type RestoreBackupResult,
  type RoomTrustRequirements,
  SecretStorage,
  type SecretStorageUnlock,
} from "./encryption/index.ts";
export {
  ClientError,
  type ClientErrorCode,
  isTransientError,
  MalformedResponseError,
  MatrixError,
  NetworkError,
} from "./errors.ts";
export { TypedEmitter } from "./events/emitter.ts";
export type {
  ClientEventMap,
  EncryptionInfo,
  RoomEvent,
  RoomEventMeta,
  SyncState,
  SyncStateInfo,
  UndecryptableCode,
} from "./events/types.ts";
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  type FetchLike,
  HttpClient,
  MAX_JSON_RESPONSE_BYTES,
  MAX_SYNC_RESPONSE_BYTES,
  path,
  type RequestPath,
} from "./http.ts";
export { type LogFn, type Logger, silentLogger } from "./logger.ts";
export {
  type DownloadedMedia,
  MAX_BUFFERED_DOWNLOAD_BYTES,
  MediaApi,
  toWebStream,
  type UploadData,
  type UploadOptions,
} from "./media.ts";
export { type CreateRoomOptions, MAX_TOMBSTONE_HOPS, type MessagesPage } from "./rooms/api.ts";
export {
  editContent,
  htmlContent,
  htmlToPlainText,
  type Mentions,
  type MessageType,
  type RelationOptions,
  reactionContent,
  textContent,
  withRelations,
} from "./rooms/content.ts";
export {
  type Predecessor,
  Room,
  type RoomEncryptionSettings,
  type RoomMember,
  type Tombstone,
} from "./rooms/room.ts";
export { newTxnId, SEND_BACKOFF } from "./rooms/send-queue.ts";
export type { SendOptions } from "./rooms/sender.ts";
export type { PasswordLogin, RegisterOptions, SessionInfo } from "./session/session.ts";
export type { DecryptionResult, EventEncryptor, SyncCryptoChanges, SyncProcessor } from "./sync/hooks.ts";
export { DEFAULT_SYNC_TIMEOUT_MS, MAX_UNSAVED_RESPONSES, SYNC_BACKOFF } from "./sync/loop.ts";
export { MAX_GAP_FILL_EVENTS } from "./sync/runner.ts";
export type { UiaAuth } from "./uia.ts";
export {
  type VerificationDriver,
  VerificationRequest,
  type VerificationRequestEvents,
} from "./verification/request.ts";
export { VERIFICATION_TICK_MS, VerificationService } from "./verification/service.ts";
