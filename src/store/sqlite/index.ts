/** `keyroom/store/sqlite`: the Node SQLite crypto store (better-sqlite3). */
export { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from "./migrations.ts";
export {
  DEFAULT_SQLITE_FILE_NAME,
  SqliteCryptoStore,
  type SqliteCryptoStoreOptions,
} from "./sqlite-store.ts";
