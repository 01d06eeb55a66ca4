// What callers of the encryption API catch and read, re-exported so `keyroom` alone suffices.
// Values come straight from their own small files, not from the E2EE barrel: the engine is loaded
// on first use (`EncryptionSession.start`), and bundlers split it off only when nothing the entry
// imports statically leads to it (esbuild assigns files to chunks by their static imports).

export { RecoveryKeyError, type RecoveryKeyErrorCode } from "../crypto/recovery-key/errors.ts";
export { SecretStorageError, type SecretStorageErrorCode } from "../crypto/secret-storage/errors.ts";
export { CrossSigningError, type CrossSigningErrorCode } from "../e2ee/cross-signing/errors.ts";
export { DehydrationError, type DehydrationErrorCode } from "../e2ee/dehydration/errors.ts";
export {
  DecryptionError,
  type DecryptionFailureCode,
  E2eeError,
  type E2eeErrorCode,
  type UnknownDevice,
  UnknownDevicesError,
  VerifiedUserProblemError,
} from "../e2ee/errors.ts";
export type {
  CrossSigningStatus,
  DeviceInfo,
  DeviceTrust,
  HeldKeyRequest,
  IdentityState,
  RecoveryProblem,
  RecoveryRepair,
  RecoveryStatus,
  SecretStorageProblem,
  SecretStorageStatus,
  SenderRequirement,
  SenderTrust,
  ShareWith,
  UnlockedSecretStorageKey,
  UserIdentityInfo,
  VerificationSnapshot,
  VerifiedKeys,
} from "../e2ee/index.ts";
export { VerificationError, type VerificationErrorCode } from "../e2ee/verification/errors.ts";
export { StoreLockedError, StoreMismatchError } from "../store/errors.ts";
// Events nesting deeper are dropped at the edge (sync, appservice transactions, decrypted payloads).
export { MAX_EVENT_DEPTH } from "../wire/json.ts";
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
export { attachmentOf, type MediaAttachment, thumbnailOf } from "./encryption/attachments.ts";
export {
  DEFAULT_DEHYDRATION_PERIOD_MS,
  DEHYDRATION_SECRET_NAME,
  KEY_BACKUP_ACCOUNT_DATA,
} from "./encryption/constants.ts";
export { ClientCryptoError, type ClientCryptoErrorCode } from "./encryption/errors.ts";
// The drivers of the encryption features, as types: their values come with the engine, loaded on
// first use. `index.ts` (Node) exports the classes too.
export type {
  BackupStatus,
  ClientCrypto,
  CreatedSecretStorageKey,
  CreateSecretStorageKeyOptions,
  DehydratedDevices,
  DehydrationStartOptions,
  EnableRecoveryOptions,
  KeyBackup,
  KeyImportResult,
  NewBackupVersion,
  NewRecoveryKeyOptions,
  ProgressCallback,
  RecoverOptions,
  RecoverResult,
  Recovery,
  RecoveryKeyResult,
  RehydrationResult,
  RestoreBackupOptions,
  RestoreBackupResult,
  RoomTrustRequirements,
  SecretStorage,
  SecretStorageUnlock,
} from "./encryption/index.ts";
export {
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_LEASE_LINGER_MS,
  DEFAULT_LEASE_TIMEOUT_MS,
  type LeaseOptions,
  MAX_LEASE_HOLD_MS,
} from "./encryption/lease.ts";
export type { CryptoStoreFactory, CryptoStoreOption, EncryptionOptions } from "./encryption/options.ts";
export { MAX_OUTGOING_PASSES } from "./encryption/outgoing.ts";
export { RecoveryError, type RecoveryErrorCode } from "./encryption/recovery-error.ts";
export {
  ClientError,
  type ClientErrorCode,
  isTransientError,
  MalformedResponseError,
  MatrixError,
  NetworkError,
  ResponseTooLargeError,
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
  MAX_BACKUP_RESPONSE_BYTES,
  MAX_JSON_RESPONSE_BYTES,
  MAX_SYNC_RESPONSE_BYTES,
  path,
  type RequestPath,
} from "./http.ts";
export { type LogFn, type Logger, silentLogger } from "./logger.ts";
export {
  type DownloadedMedia,
  MAX_BUFFERED_DOWNLOAD_BYTES,
  MAX_BUFFERED_THUMBNAIL_BYTES,
  MAX_MEDIA_FILENAME_LENGTH,
  MediaApi,
  sanitizeFilename,
  type ThumbnailMethod,
  type ThumbnailOptions,
  toWebStream,
  type UploadData,
  type UploadOptions,
} from "./media.ts";
export {
  MAX_PRESENCE_STATUS_CHARS,
  MAX_PRESENCE_TEXT_CHARS,
  MAX_PRESENCE_USERS,
  type Presence,
  type PresenceState,
} from "./presence.ts";
export { printable, printableJson } from "./printable.ts";
export {
  type CreateRoomOptions,
  MAX_TOMBSTONE_HOPS,
  type MessagesPage,
  type RelationsPage,
} from "./rooms/api.ts";
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
  englishRoomName,
  MAX_ROOM_NAME_CHARS,
  MAX_ROOM_NAME_MEMBER_CHARS,
  ROOM_NAME_HEROES,
  type RoomNameFormatter,
  type RoomNameParts,
} from "./rooms/display-name.ts";
export { MAX_TYPING_USERS } from "./rooms/ephemeral.ts";
export {
  MAX_INVITE_STATE_CHARS,
  MAX_INVITE_STATE_EVENTS,
  type Predecessor,
  Room,
  type RoomEncryptionSettings,
  type RoomMember,
  type RoomSummaryInfo,
  type Tombstone,
} from "./rooms/room.ts";
export { newTxnId, SEND_BACKOFF } from "./rooms/send-queue.ts";
export type { SendOptions } from "./rooms/sender.ts";
export type { NotificationCounts, UnreadNotifications } from "./rooms/unread.ts";
export {
  MAX_REFRESH_SAVE_RETRIES,
  REFRESH_CLAIM_MS,
  REFRESH_CLAIM_POLL_MS,
  REFRESH_RETRY_MS,
  REFRESH_SAVE_RETRY_MS,
  TOKEN_REFRESH_MARGIN_MS,
} from "./session/refresh.ts";
export type { PasswordLogin, RegisterOptions, SessionInfo } from "./session/session.ts";
export type { IdentityProvider, LoginFlow } from "./session/sso.ts";
export type {
  DecryptionResult,
  EventEncryptor,
  SyncCryptoChanges,
  SyncProcessor,
  SyncTimeline,
} from "./sync/hooks.ts";
export {
  CATCH_UP_SYNC_TIMEOUT_MS,
  DEFAULT_SYNC_TIMEOUT_MS,
  MAX_UNSAVED_RESPONSES,
  SYNC_BACKOFF,
} from "./sync/loop.ts";
export { MAX_GAP_FILL_EVENTS } from "./sync/runner.ts";
export { MAX_EMITTED_EVENT_IDS, MAX_LEFT_ROOMS } from "./sync/state.ts";
export {
  MAX_UIA_OAUTH_URL_LENGTH,
  UIA_OAUTH_STAGES,
  type UiaAuth,
  type UiaOAuthApproval,
  type UiaOAuthStage,
} from "./uia.ts";
export {
  type VerificationDriver,
  VerificationRequest,
  type VerificationRequestEvents,
} from "./verification/request.ts";
export { VERIFICATION_TICK_MS, VerificationService } from "./verification/service.ts";
