// `keyroom/bot/appservice`: a bot run as an application service's user, with the same recovery
// set-up as a bot with its own account (see docs/bots.md, "Appservice mode").
export {
  APPSERVICE_DATA_DIR,
  type AppserviceBotDir,
  BOT_DEVICE_NAME,
  REGISTRATION_FILE,
  RESET_MARKER_FILE,
} from "./directory.ts";
export { type AppserviceBotInit, type InitializedAppserviceBot, initAppserviceBot } from "./init.ts";
export { type RecoveredAppserviceBot, recoverAppserviceBot, resetAppserviceBot } from "./recover.ts";
export { type AppserviceBotHints, type OpenedAppserviceBot, openAppserviceBot } from "./start.ts";
