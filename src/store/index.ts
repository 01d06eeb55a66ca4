export type { CryptoChanges } from "./changes.ts";
export { isEmptyChanges } from "./changes.ts";
export {
  MAX_STORE_KDF_ITERATIONS,
  STORE_KDF_ITERATIONS,
  STORE_KEY_LENGTH,
} from "./cipher/store-cipher.ts";
export type { ConformanceFixture, ConformanceOpenOptions, ConformanceTarget } from "./conformance.ts";
export { runCryptoStoreConformance } from "./conformance.ts";
export {
  StoreError,
  type StoreErrorCode,
  StoreKeyError,
  type StoreKeyErrorCode,
  StoreLockedError,
  StoreMismatchError,
  type StoreMismatchErrorCode,
} from "./errors.ts";
export type { IdentityRequest } from "./identity.ts";
export { asJsonObject, type JsonObject, type JsonValue, MAX_STORED_JSON_DEPTH } from "./json.ts";
export { MemoryCryptoStore, type MemoryCryptoStoreOptions, MemoryStoreData } from "./memory/memory-store.ts";
export * from "./records.ts";
export { LATEST_SCHEMA_VERSION } from "./sqlite/migrations.ts";
export {
  DEFAULT_SQLITE_FILE_NAME,
  SqliteCryptoStore,
  type SqliteCryptoStoreOptions,
} from "./sqlite/sqlite-store.ts";
export type { CryptoStore, InboundGroupSessionCounts } from "./store.ts";
export * from "./validate.ts";
