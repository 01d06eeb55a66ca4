// keyroom/appservice: run virtual users (a bridge, or a bot) as an application service, with
// end-to-end encryption through MSC2409/MSC4203 and MSC3202. See docs/bots.md, "Appservice mode".

// The registration's errors and the bounds of the Application Service API's wire formats.
export {
  MAX_NAMESPACE_REGEX_LENGTH,
  MAX_NAMESPACES_PER_KIND,
  MAX_TXN_EVENTS,
  RegistrationError,
} from "../wire/appservice.ts";
export {
  Appservice,
  type AppserviceOptions,
  type ListenOptions,
  MAX_FED_TXNS_PER_USER,
  MAX_FEED_ATTEMPTS,
  type PingResult,
  type VirtualUserClientOptions,
  virtualUserPaths,
} from "./appservice.ts";
export { AppserviceError, type AppserviceErrorCode } from "./errors.ts";
export { HELD_TO_DEVICE_DIR } from "./held-to-device.ts";
export { HELD_TRANSACTIONS_DIR, MAX_HELD_TRANSACTIONS } from "./held-transactions.ts";
export {
  type GenerateRegistrationOptions,
  generateRegistration,
  parseRegistration,
  REG_MSC4190,
  type Registration,
  registrationToYaml,
} from "./registration.ts";
export { MAX_REMEMBERED_TXNS, SeenTransactions } from "./seen-transactions.ts";
export {
  type AppserviceHandlers,
  type AppserviceListener,
  checkHsToken,
  listenAppservice,
  MAX_TXN_BODY_BYTES,
} from "./server.ts";
export {
  MAX_DEVICE_LIST_TXNS_HELD_WHILE_STARTING,
  MAX_DEVICE_LIST_USERS_HELD_WHILE_STARTING,
  MAX_FAILED_STARTS_HELD,
  MAX_RECEIPTS_HELD_WHILE_STARTING,
  MAX_ROOM_EVENTS_HELD_WHILE_STARTING,
  MAX_TO_DEVICE_HELD_WHILE_STARTING,
} from "./starting-users.ts";
export { checkTxnId, MAX_TXN_ID_LENGTH, parseTransaction, type Transaction } from "./transaction.ts";
export { type KnownKeyCounts, userSyncFor, type VirtualUserView } from "./user-sync.ts";
