export {
  buildRoomKeyBundle,
  HISTORY_NOT_SHARED,
  type HistoricRoomKey,
  HistorySharingError,
  isRoomKeyBundleType,
  MAX_BUNDLE_BYTES,
  MAX_BUNDLE_ROOM_KEYS,
  MAX_BUNDLE_URL_LENGTH,
  parseReceivedBundle,
  parseRoomKeyBundle,
  parseRoomKeyBundleContent,
  ROOM_KEY_BUNDLE_TYPE,
  type RoomKeyBundle,
  type RoomKeyWithheldEntry,
  UNSTABLE_ROOM_KEY_BUNDLE_TYPE,
} from "./bundle.ts";
export {
  type AcceptedInvite,
  BUNDLE_ACCEPT_WINDOW_MS,
  MAX_ACCEPTED_INVITES,
  MAX_PENDING_BUNDLES,
  type PendingBundle,
} from "./pending.ts";
