// The `keyroom` entry point: the client API. Crypto lives at `keyroom/crypto`, the devserver at
// `keyroom/devserver`.
export * from "./client/index.ts";
export type {
  BasicEvent,
  ClientEvent,
  JsonObject,
  Membership,
  StateEvent,
  StrippedStateEvent,
  SyncResponse,
  ToDeviceEvent,
} from "./wire/index.ts";
