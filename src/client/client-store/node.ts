// Client stores on the file system, for Node (exported by the package's Node entry, `src/index.ts`).
export { FILE_LOCK_STALE_MS, FILE_LOCK_WAIT_MS } from "./file-lock.ts";
export { FileClientStore } from "./file-store.ts";
export { SqliteClientStore } from "./sqlite-store.ts";
