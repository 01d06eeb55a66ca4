/**
 * `keyroom/store` for browsers: everything in `index.ts` except the SQLite store (which needs
 * Node's file system and better-sqlite3).
 */
export type { CryptoChanges } from "./changes.ts";
export { isEmptyChanges } from "./changes.ts";
export {
  type KeyProtection,
  MAX_STORE_KDF_ITERATIONS,
  rowAd,
  STORE_KDF_ITERATIONS,
  STORE_KEY_LENGTH,
  StoreCipher,
  type StoreKeyHeader,
} from "./cipher/store-cipher.ts";
export {
  StoreError,
  type StoreErrorCode,
  StoreKeyError,
  type StoreKeyErrorCode,
  StoreLockedError,
  type StoreLockedErrorCode,
  StoreMismatchError,
  type StoreMismatchErrorCode,
} from "./errors.ts";
export { type IdentityRequest, resolveIdentity } from "./identity.ts";
export {
  DEFAULT_IDB_NAME,
  IndexedDbCryptoStore,
  type IndexedDbCryptoStoreOptions,
} from "./indexeddb/idb-store.ts";
export type { LeaseChannel, LeaseChannelFactory, WebLockManager } from "./indexeddb/lease.ts";
export { IDB_SCHEMA_VERSION } from "./indexeddb/upgrades.ts";
export { asJsonObject, type JsonObject, type JsonValue, MAX_STORED_JSON_DEPTH } from "./json.ts";
export { MemoryCryptoStore, type MemoryCryptoStoreOptions, MemoryStoreData } from "./memory/memory-store.ts";
export * from "./records.ts";
export type {
  BackUpReadOptions,
  CryptoStore,
  InboundGroupSessionCounts,
  InboundGroupSessionPage,
  LeaseGrant,
  StoreLease,
} from "./store.ts";
export {
  MAX_INBOUND_SESSIONS_PER_LOOKUP,
  MAX_RIVAL_ROOM_KEYS_PER_SESSION,
  MAX_STORED_OLM_MESSAGE_HASHES,
  MAX_STORED_RIVAL_ROOM_KEYS,
  MAX_STORED_WITHHELD,
  MAX_USERS_PER_DEVICE_LOOKUP,
} from "./store.ts";
export * from "./validate.ts";
