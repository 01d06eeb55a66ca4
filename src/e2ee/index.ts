// Decrypted payloads nesting deeper are refused (`BAD_PAYLOAD`), as events in the clear are dropped.

// What the store keeps of what anyone can send (withheld notices, Olm message hashes, rival room
// keys) is bounded by the store: every back end evicts the oldest (see docs/stores.md).
export {
  MAX_RIVAL_ROOM_KEYS_PER_SESSION,
  MAX_STORED_OLM_MESSAGE_HASHES,
  MAX_STORED_RIVAL_ROOM_KEYS,
  MAX_STORED_WITHHELD,
} from "../store/store.ts";
export { MAX_EVENT_DEPTH } from "../wire/json.ts";
export * from "./backup/index.ts";
export * from "./cross-signing/index.ts";
export { MAX_OWN_ECHO_BYTES, MAX_OWN_ECHO_PLAINTEXT, MAX_OWN_ECHOES } from "./decryption/own-echoes.ts";
export { MAX_LATE_VERIFICATION_EVENTS, MAX_PENDING_EVENTS } from "./decryption/pending.ts";
export type { UndecryptableRoomEvent } from "./decryption/redecrypt.ts";
export { REPLAY_CACHE_SIZE, REPLAY_FLUSH_BATCH } from "./decryption/replay.ts";
export {
  DECRYPT_PREFETCH_EVENTS,
  type DecryptedRoomEvent,
  type EncryptedRoomEvent,
  type KeysFrom,
  type RoomEventDecryption,
  type RoomEventToDecrypt,
  type SenderRequirement,
} from "./decryption/room-events.ts";
export * from "./dehydration/index.ts";
export {
  type DeviceInfo,
  MEGOLM_ALGORITHM,
  OLM_ALGORITHM,
} from "./devices/device.ts";
export {
  KEYS_QUERY_BACKOFF_MS,
  KEYS_QUERY_BATCH_SIZE,
  MAX_DEVICES_PER_USER,
  MAX_KEYS_QUERY_BACKOFF_MS,
  MAX_LOOKUPS_IN_FLIGHT,
  MAX_TRACKED_SENDERS,
} from "./devices/manager.ts";
export { MAX_REPLACED_DEVICES } from "./devices/replaced.ts";
export { MAX_DEVICE_KEYS_JSON_LENGTH } from "./devices/validate.ts";
export {
  DecryptionError,
  type DecryptionFailureCode,
  E2eeError,
  type E2eeErrorCode,
  type ToDeviceFailureCode,
  type UnknownDevice,
  UnknownDevicesError,
  VerifiedUserProblemError,
} from "./errors.ts";
export * from "./history-sharing/index.ts";
export { OLD_FALLBACK_KEY_LIFETIME_MS } from "./identity/own-device.ts";
export {
  KEY_ID_SKIP_ON_CONFLICT,
  KEY_UPLOAD_CONFLICT_BACKOFF_MS,
  MAX_KEY_UPLOAD_CONFLICTS,
  type RequestFailure,
  type RequestFailureOutcome,
} from "./identity/upload-conflict.ts";
export {
  type HeldKeyRequest,
  MAX_HELD_KEY_REQUESTS,
  MAX_HELD_KEY_REQUESTS_PER_DEVICE,
} from "./key-requests/held.ts";
export {
  KEY_ANSWER_WINDOW_MS,
  MAX_FORWARDING_CHAIN,
  MAX_KEY_ANSWER_RATE_DEVICES,
  MAX_KEY_ANSWERS_PER_DEVICE,
  MAX_KEY_ANSWERS_PER_SESSION,
  MAX_OUTGOING_KEY_REQUESTS,
  MAX_PENDING_KEY_ANSWERS,
} from "./key-requests/manager.ts";
export {
  MAX_ID_LENGTH,
  MAX_KEYS_JSON_DEPTH,
  MAX_REASON_LENGTH,
  MAX_ROOM_EVENT_CIPHERTEXT_BYTES,
  MAX_TO_DEVICE_CIPHERTEXT_BYTES,
} from "./limits.ts";
export { OlmMachine, type OlmMachineOptions } from "./machine.ts";
export type { MachineStore } from "./machine-context.ts";
export { CLAIM_FAILURE_BACKOFF_MS, MAX_CLAIM_FAILURES } from "./machine-requests.ts";
export { MAX_RENEWED_DEVICES, MAX_RESHARES_PER_DEVICE, RESHARE_INTERVAL_MS } from "./olm-sessions/renewed.ts";
export { MAX_SESSIONS_PER_DEVICE, MAX_SESSIONS_TRIED, UNWEDGE_INTERVAL_MS } from "./olm-sessions/sessions.ts";
export type {
  KeysClaimRequest,
  KeysQueryRequest,
  KeysUploadRequest,
  OutgoingRequest,
  OutgoingRequestType,
  SignatureUploadRequest,
  SigningKeysUploadRequest,
  ToDeviceRequest,
} from "./requests.ts";
export { IMPORT_BATCH_SIZE } from "./room-keys/import.ts";
export { INBOUND_SESSION_CACHE_SIZE, type RoomKeyUpdate, SAVED_IMPORT_RECORDS } from "./room-keys/inbound.ts";
export { MAX_NO_OLM_NOTICES } from "./room-keys/no-olm.ts";
export { MAX_NO_OLM_RECEIVED, MAX_NO_OLM_RECEIVED_PER_SENDER } from "./room-keys/no-olm-received.ts";
export { SHARE_BATCH_SIZE } from "./room-keys/outbound.ts";
export type { RoomEventPlan, RoomEventRecipients } from "./room-keys/send.ts";
export {
  DEFAULT_ROTATION_PERIOD_MESSAGES,
  DEFAULT_ROTATION_PERIOD_MS,
  type HistoryVisibility,
  MAX_ROTATION_PERIOD_MESSAGES,
  MAX_ROTATION_PERIOD_MS,
  MIN_ROTATION_PERIOD_MS,
  type RoomEncryptionSettings,
  type RoomMember,
  SHARE_WITH_VALUES,
  type ShareWith,
} from "./room-keys/settings.ts";
export { EXPORT_PAGE_SIZE } from "./room-keys/transfer.ts";
export * from "./secret-storage/index.ts";
export type {
  ProcessedToDeviceEvent,
  SyncChanges,
  SyncChangesResult,
  ToDeviceEvent,
} from "./sync/to-device.ts";
export { MAX_QUEUED_REPLIES } from "./to-device-queue.ts";
export type { DeviceTrust, SenderTrust } from "./trust/trust.ts";
export {
  type CancelCode,
  decodeQrCode,
  encodeQrCode,
  MAX_FLOWS_PER_USER,
  MAX_VERIFICATION_FLOWS,
  type QrCodeData,
  type VerificationAction,
  VerificationApi,
  VerificationError,
  type VerificationErrorCode,
  type VerificationRoomMessage,
  type VerificationSnapshot,
  type VerificationUpdates,
  type VerifiedKeys,
} from "./verification/index.ts";
