export {
  createDehydratedDevice,
  DEHYDRATED_DEVICE_ONE_TIME_KEYS,
  DEHYDRATED_DEVICE_PATH,
  type DehydratedDeviceData,
  type DehydratedDeviceUpload,
  DehydrationError,
  type DehydrationErrorCode,
  type DeviceKeysSigner,
  dehydratedEventsRequest,
  MAX_DEHYDRATED_DEVICE_EVENTS,
  MAX_DEHYDRATED_DEVICE_EVENTS_PAGE,
  parseDehydratedDevice,
  parseDehydratedEventsPage,
  rehydrateDevice,
} from "./dehydrated-device.ts";
export {
  MAX_REHYDRATED_OLM_SESSIONS,
  RehydratedDevice,
  type RehydratedPage,
  type RehydratedRoomKey,
} from "./rehydrate.ts";
