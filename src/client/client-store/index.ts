// The client stores every runtime has. The Node-only ones (file, SQLite) are in `node.ts`, exported
// by the Node entry of the package only.
export {
  DEFAULT_CLIENT_IDB_NAME,
  IndexedDbClientStore,
  type IndexedDbClientStoreOptions,
} from "./idb-store.ts";
export { MemoryClientStore } from "./memory-store.ts";
export {
  applySyncChanges,
  type ClientStore,
  MAX_ROOM_HEROES,
  MAX_THREAD_NOTIFICATION_COUNTS,
  mergeSyncChanges,
  type RefreshClaim,
  type RoomSnapshot,
  type StoredSession,
  type StoredUnreadNotifications,
  type SyncChanges,
  type SyncSnapshot,
  sameStoredSession,
} from "./store.ts";
