// The `keyroom` entry point on Node (the package's `node` condition): the client API, plus the client
// stores on the file system. Browsers get `browser.ts`. Crypto lives at `keyroom/crypto`, the
// devserver at `keyroom/devserver`.
export * from "./browser.ts";
export {
  FILE_LOCK_STALE_MS,
  FILE_LOCK_WAIT_MS,
  FileClientStore,
  SqliteClientStore,
} from "./client/client-store/node.ts";
export {
  ClientCrypto,
  DehydratedDevices,
  KeyBackup,
  Recovery,
  SecretStorage,
} from "./client/encryption/index.ts";
// The encryption drivers and the secret storage key as values too (the browser entry has them as
// types only: their code is in the engine, which a browser loads on first use).
export { UnlockedSecretStorageKey } from "./e2ee/index.ts";
