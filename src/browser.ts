// The `keyroom` entry point for browsers, workers and other runtimes without Node (the package's
// `browser` and `default` conditions): the client API without the Node-only stores. Node's entry,
// `index.ts`, adds those. Crypto lives at `keyroom/crypto`, the devserver at `keyroom/devserver`.
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
