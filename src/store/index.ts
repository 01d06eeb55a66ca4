/**
 * `keyroom/store`: the `CryptoStore` interface, its records and errors, and every back end
 * (memory, SQLite, IndexedDB). Browser bundles import `./browser.ts` instead, which leaves out the
 * SQLite store and its Node dependencies; the conformance suite for custom stores is
 * `./conformance.ts`.
 */
export * from "./browser.ts";
export { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from "./sqlite/migrations.ts";
export {
  DEFAULT_SQLITE_FILE_NAME,
  SqliteCryptoStore,
  type SqliteCryptoStoreOptions,
} from "./sqlite/sqlite-store.ts";
