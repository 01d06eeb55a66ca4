export { KeyExportError, type KeyExportErrorCode } from "./errors.ts";
export {
  type ExportedRoomKey,
  parseExportedRoomKey,
  readSharedHistory,
  SHARED_HISTORY_FIELDS,
} from "./exported-room-key.ts";
export {
  DEFAULT_EXPORT_ROUNDS,
  decryptKeyExport,
  decryptKeyExportAsync,
  encryptKeyExport,
  encryptKeyExportAsync,
  type KeyExportOptions,
  MAX_EXPORT_ROUNDS,
} from "./key-export.ts";
