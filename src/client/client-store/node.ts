// Client stores on the file system, for Node (exported by the package's Node entry, `src/index.ts`).
export { FileClientStore } from "./file-store.ts";
export { SqliteClientStore } from "./sqlite-store.ts";
