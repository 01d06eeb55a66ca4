export { FileClientStore } from "./file-store.ts";
export { MemoryClientStore } from "./memory-store.ts";
export { SqliteClientStore } from "./sqlite-store.ts";
export {
  applySyncChanges,
  type ClientStore,
  type RoomSnapshot,
  type StoredSession,
  type SyncChanges,
  type SyncSnapshot,
} from "./store.ts";
