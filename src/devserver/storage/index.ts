export { AccountStore, type DeviceRow, hashToken, type UserRow } from "./accounts.ts";
export { type AppserviceStateRow, AppserviceStore } from "./appservices.ts";
export { type Db, openDatabase, StorageError, StreamCounter } from "./db.ts";
export { KeyStore, type SignatureRow } from "./keys.ts";
export {
  type BackupKeyRow,
  type BackupVersionRow,
  type MediaRow,
  MiscStore,
  type ReceiptRow,
} from "./misc.ts";
export { type MembershipRow, type RoomRow, RoomStore } from "./rooms.ts";
